"""Landing a file the service already wrote into the user's object storage (Bedrock into S3, Vertex into GCS).

Nothing is downloaded over HTTP: the file is read through Airflow's ``ObjectStoragePath`` with the
connection that can read it, and landed by the same rules as a download: into a hidden temporary
name beside the destination, its size checked against the source's, its content checked (a whole
MP4), its SHA-256 recorded in the integrity record, and moved into place only then. When source and
destination are on the same object store (S3 to S3, GCS to GCS) the bytes are copied server-side,
then read back once to be checked and hashed; otherwise they are streamed through the worker in chunks. A retry
after a landed copy verifies it and copies nothing. The source is never moved or deleted: the video
is paid for, and stays where the service wrote it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.download._types import FileKind, StoredFile, _Target, log
from airflow_provider_videogen.download.content import _KIND_DESCRIPTIONS
from airflow_provider_videogen.download.destination import check_destination, storage_uri
from airflow_provider_videogen.download.existing import landed_copy
from airflow_provider_videogen.download.record import _Record
from airflow_provider_videogen.download.remote import _Remote
from airflow_provider_videogen.download.staging import (
    _MIN_UPLOAD_BLOCK,
    _publish_with_record,
    _StagedFile,
    _storage_errors,
)
from airflow_provider_videogen.exceptions import VideoContentError, VideoNotAvailableError, VideoStorageError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: URL schemes of files a service wrote into the user's object storage (landed by copying, not downloading).
STORED_SCHEMES = ("s3://", "gs://")
# What reads each store, for the messages: the connection type, and the permissions a read needs.
_READERS = {
    "s3": ("aws connection", "s3:GetObject, s3:ListBucket"),
    "gs": ("google_cloud_platform connection", "storage.objects.get, storage.objects.list"),
}


def is_stored_object(url: str) -> bool:
    """Whether ``url`` names a file in object storage (``s3://...``, ``gs://...``) rather than one to download."""
    return url.startswith(STORED_SCHEMES)


def copy_stored_object(
    url: str,
    destination: ObjectStoragePath,
    *,
    source_conn_id: str | None,
    video_task_id: str,
    kind: FileKind = "video",
    overwrite: bool = False,
    chunk_size: int,
    sweep: bool = True,
) -> StoredFile:
    """Copy the object at ``url`` to ``destination``, checked as a download is; return what is stored there.

    :param url: the object's URI (``s3://bucket/key`` or ``gs://bucket/key``).
    :param destination: the file's path (not a folder).
    :param source_conn_id: the storage connection that reads the source (an ``aws`` connection for ``s3://``, a
        ``google_cloud_platform`` one for ``gs://``).
    :param video_task_id: the video task the file belongs to (recorded, and used in messages).
    :param kind: ``video`` or ``last_frame``.
    :param overwrite: replace a destination that holds a different file instead of failing.
    :param chunk_size: bytes read and written per step of a streamed copy.
    :param sweep: first remove the temporary files a killed earlier try left for ``destination`` (one listing
        of its folder); off where the caller swept the folder once for many files
        (:func:`~.staging.remove_abandoned_temporaries_in`).
    :raises VideoNotAvailableError: the object is not there (the service has not written it, or it was removed).
    :raises VideoContentError: the object is not a whole file of its kind; nothing is stored.
    :raises VideoDestinationExistsError: the destination holds another file and ``overwrite`` is off.
    """
    from airflow.sdk import ObjectStoragePath

    source = ObjectStoragePath(url, conn_id=source_conn_id)
    check_destination(storage_uri(destination))
    target = _Target.named(url, destination, video_task_id, kind)
    remote = _describe(source, target)
    existing = landed_copy(target, overwrite=overwrite, probe=lambda: remote, chunk_size=chunk_size, sweep=sweep)
    if existing is not None:
        return existing
    return _store(source, target, remote, chunk_size)


def _store(source: ObjectStoragePath, target: _Target, remote: _Remote, chunk_size: int) -> StoredFile:
    """Stage the copy, check it, publish it with its record; return what is stored. A failure leaves nothing."""
    staged = _StagedFile(target.destination, block_size=max(chunk_size, _MIN_UPLOAD_BLOCK), kind=target.kind)
    try:
        with _storage_errors(target):
            _stage(source, target.destination, staged, chunk_size)
        size, digest = staged.written, staged.hexdigest()
        _check(target, staged, remote, size)
        with _storage_errors(target):
            _publish_with_record(staged, _Record.build(target, remote, size, digest))
    except BaseException:
        staged.discard()
        raise
    uri = storage_uri(target.destination)
    log.info(
        "Stored the %s of video task %s at %s from %s (%d bytes, sha256 %s).",
        target.what,
        target.video_task_id,
        uri,
        target.url,
        size,
        digest,
    )
    return StoredFile(uri, size, digest, downloaded=True)


def _stage(source: ObjectStoragePath, destination: ObjectStoragePath, staged: _StagedFile, chunk_size: int) -> None:
    """Copy the source into the temporary file: server-side within one store (then read back), else streamed."""
    if _same_store(source, destination):
        _copy_server_side(source, staged, chunk_size)
    else:
        _copy_streamed(source, staged, chunk_size)


def _copy_server_side(source: ObjectStoragePath, staged: _StagedFile, chunk_size: int) -> None:
    """Have the store copy the source onto the temporary file, then read it back once to hash and check it."""
    staged.open()
    staged.close()  # an empty temporary, replaced by the server-side copy
    source.fs.copy(source.path, staged.temporary_path)
    staged.reread(chunk_size)


def _copy_streamed(source: ObjectStoragePath, staged: _StagedFile, chunk_size: int) -> None:
    """Stream the source through the worker into the temporary file, chunk by chunk (hashed and checked as written)."""
    staged.open()
    with source.open("rb") as reader:
        while chunk := reader.read(chunk_size):
            staged.write(chunk)
    staged.close()


def _describe(source: ObjectStoragePath, target: _Target) -> _Remote:
    """Return the source object's size and ETag; raise a clear error when it is not there."""
    connection, permissions = _READERS[target.url.split("://", 1)[0]]
    try:
        info: dict[str, Any] = source.fs.info(source.path)
    except FileNotFoundError:
        raise VideoNotAvailableError(
            f"The {target.what} of video task {target.video_task_id} is not at {target.url}: the service said it "
            "wrote it there, but the object does not exist (it was removed, or the connection reads another "
            f"account's bucket). Check the output prefix and the {connection}.",
            video_task_id=target.video_task_id,
        ) from None
    except OSError as error:
        raise VideoStorageError(
            f"Could not read {target.url}, the {target.what} of video task {target.video_task_id}: {error}. "
            f"Check that the {connection} may read it ({permissions}).",
            video_task_id=target.video_task_id,
        ) from error
    etag = info.get("ETag") or info.get("etag")
    return _Remote(total=int(info["size"]), etag=str(etag) if etag else None, last_modified=None, sha256=None)


def _same_store(source: ObjectStoragePath, destination: ObjectStoragePath) -> bool:
    """Whether a server-side copy can do it: both on one S3 or GCS file system (the same endpoint and credentials)."""
    return source.protocol == destination.protocol and source.protocol in _READERS and source.fs is destination.fs


def _check(target: _Target, staged: _StagedFile, remote: _Remote, size: int) -> None:
    """Raise unless the copy has the source's size and is a whole file of its kind."""
    problem = None
    if remote.total is not None and size != remote.total:
        problem = f"{size} bytes were copied of {remote.total}"
    problem = problem or staged.content_problem()
    if problem is not None:
        raise VideoContentError(
            f"The {target.what} of video task {target.video_task_id} at {target.url} is not "
            f"{_KIND_DESCRIPTIONS[target.kind]}: {problem}. Nothing was stored.",
            video_task_id=target.video_task_id,
        )
