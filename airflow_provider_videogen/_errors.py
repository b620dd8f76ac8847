"""The configuration error, made where importing Airflow at module level is not allowed."""

from __future__ import annotations


def refused(message: str) -> Exception:
    """Return the provider's configuration error for ``message``, to raise.

    The error class is imported here, not at the top of the modules that raise it: the API styles
    are read by ``get_provider_info()``, which Airflow's providers manager calls while Airflow itself
    is still being imported, so they (and what they import) must not import Airflow at import time.
    """
    from airflow_provider_videogen.exceptions import VideoGenConfigurationError

    return VideoGenConfigurationError(message)
