"""What every module of the download package shares: the logger, the kinds of file, a file to copy, a landed file."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from airflow_provider_videogen.exceptions import VideoDownloadCancelledError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

# The name the download logged under when it was one module: deployments filter and level it by that name.
log = logging.getLogger("airflow_provider_videogen.video_download")

FileKind = Literal["video", "last_frame"]


@dataclass(frozen=True)
class StoredFile:
    """A file landed in storage.

    :param uri: where it is, as a plain URI (``s3://bucket/key``, ``file:///dir/name``).
    :param size_bytes: its size.
    :param sha256: hex SHA-256 of its bytes (computed while writing, or by re-reading it).
    :param downloaded: ``False`` when the destination already held it and nothing was downloaded.
    """

    uri: str
    size_bytes: int
    sha256: str
    downloaded: bool


@dataclass(frozen=True)
class _Target:
    """One file to copy: from where, to where, for which task, and how it is named in messages."""

    url: str
    destination: ObjectStoragePath
    video_task_id: str
    kind: FileKind
    what: str
    authenticated: bool = False

    @classmethod
    def named(
        cls,
        url: str,
        destination: ObjectStoragePath,
        video_task_id: str,
        kind: FileKind,
        *,
        authenticated: bool = False,
    ) -> _Target:
        """Return the file to copy, named in messages by its kind (``video`` or ``last frame``)."""
        what = "video" if kind == "video" else "last frame"
        return cls(url, destination, video_task_id, kind, what, authenticated=authenticated)


def cancelled_error(target: _Target) -> VideoDownloadCancelledError:
    """Return the error a copy cancelled by ``on_kill`` ends with."""
    return VideoDownloadCancelledError(
        f"Downloading the {target.what} of video task {target.video_task_id} was cancelled.",
        video_task_id=target.video_task_id,
    )
