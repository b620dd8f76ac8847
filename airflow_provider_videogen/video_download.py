"""Land generated videos in object storage: kept so that imports of this module keep working.

The download lives in the :mod:`airflow_provider_videogen.download` package, one concern a module;
its names are handed on here, and so are the error classes this module used to expose.
"""

from __future__ import annotations

from airflow_provider_videogen import download
from airflow_provider_videogen.download import *  # noqa: F403  (every name the package exports, as it lists them)
from airflow_provider_videogen.exceptions import (
    VideoContentError,
    VideoDestinationError,
    VideoDestinationExistsError,
    VideoDownloadCancelledError,
    VideoDownloadError,
    VideoFileKeyRefusedError,
    VideoIntegrityError,
    VideoNotAvailableError,
    VideoStorageError,
    VideoTaskFailedError,
    VideoTaskNotReadyError,
    VideoURLExpiredError,
)

__all__ = [
    "VideoContentError",
    "VideoDestinationError",
    "VideoDestinationExistsError",
    "VideoDownloadCancelledError",
    "VideoDownloadError",
    "VideoFileKeyRefusedError",
    "VideoIntegrityError",
    "VideoNotAvailableError",
    "VideoStorageError",
    "VideoTaskFailedError",
    "VideoTaskNotReadyError",
    "VideoURLExpiredError",
]
__all__ += download.__all__
