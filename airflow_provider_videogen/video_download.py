"""Land generated videos in object storage: kept so that imports of this module keep working.

The download lives in the :mod:`airflow_provider_videogen.download` package, one concern a module;
its names are handed on here, and so are the error classes this module used to expose.
"""

from __future__ import annotations

from airflow_provider_videogen.download import (
    DEFAULT_CHUNK_SIZE,
    RECORD_SUFFIX,
    FileKind,
    LandedFiles,
    Landing,
    StoredFile,
    VideoDownloader,
    advertised_sha256,
    check_destination,
    check_file_url,
    last_frame_path,
    require_succeeded,
    resolve_destination,
    storage_uri,
)
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
    "DEFAULT_CHUNK_SIZE",
    "RECORD_SUFFIX",
    "FileKind",
    "LandedFiles",
    "Landing",
    "StoredFile",
    "VideoContentError",
    "VideoDestinationError",
    "VideoDestinationExistsError",
    "VideoDownloadCancelledError",
    "VideoDownloadError",
    "VideoDownloader",
    "VideoFileKeyRefusedError",
    "VideoIntegrityError",
    "VideoNotAvailableError",
    "VideoStorageError",
    "VideoTaskFailedError",
    "VideoTaskNotReadyError",
    "VideoURLExpiredError",
    "advertised_sha256",
    "check_destination",
    "check_file_url",
    "last_frame_path",
    "require_succeeded",
    "resolve_destination",
    "storage_uri",
]
