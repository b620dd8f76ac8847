"""How an API style reads its service's error answers, and the answers that mean "no such task".

The codes that mean "no such task" or "key refused" (and the 2xx statuses that mean "no such task"),
the error's code and message, how long the service asks to wait: with them an error answer becomes
a typed error (:mod:`~airflow_provider_videogen.answers`). A style whose service answers errors in the default shape
(``{"error": {"code", "message"}}``, ``Retry-After``) keeps the defaults here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from airflow_provider_videogen.retry import parse_retry_after
from airflow_provider_videogen.styles.fields import text

__all__ = ["ErrorAnswers"]


class ErrorAnswers:
    """What a style says of its service's error answers: which codes mean what, the code and message, the wait.

    A base of :class:`~airflow_provider_videogen.styles.base.ApiStyle`: every style has these through it.
    """

    #: API error codes that mean "no such task", whatever the HTTP status.
    not_found_codes: ClassVar[frozenset[str]] = frozenset()
    #: API error codes that mean the key was refused, whatever the HTTP status.
    auth_error_codes: ClassVar[frozenset[str]] = frozenset()
    #: Statuses of an answer that means "no such task" although it is a 2xx, in lower case (compared
    #: in lower case, like :attr:`~airflow_provider_videogen.styles.base.ApiStyle.statuses`).
    missing_task_statuses: ClassVar[frozenset[str]] = frozenset()

    def api_error(self, decoded: Any) -> tuple[str | None, str | None]:
        """Read the API's error code and message from an error answer (``{"error": {"code", "message"}}``)."""
        if not isinstance(decoded, Mapping):
            return None, None
        error = decoded.get("error")
        if isinstance(error, Mapping):
            code = error.get("code")
            return (str(code) if code not in (None, "") else None), text(error.get("message"))
        return None, None

    def error_code_header(self, headers: Mapping[str, str]) -> str | None:
        """Read the API's error code from an error answer's headers, where the body names none (none by default)."""
        return None

    def retry_after(self, headers: Mapping[str, str], decoded: Any) -> float | None:
        """Seconds an error answer asks to wait before asking again (``Retry-After`` by default)."""
        return parse_retry_after(headers.get("Retry-After"))
