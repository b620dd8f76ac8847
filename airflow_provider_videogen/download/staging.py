"""Staging: a hidden temporary file beside the destination, moved into place only once whole, else removed.

Bytes go to ``.<name>.<random>.part`` beside the destination. On a local file system the move is a
``rename`` in the same folder, which is atomic; on an object store it is a server-side copy and
delete, so the destination key only ever appears whole, and a temporary object abandoned midway has
its multipart upload aborted rather than committed. A process killed outright (SIGKILL, a lost worker)
can leave its hidden ``.part`` file (or a pending multipart upload) behind, never a partial file at the
destination; the next fetch of the same destination (the task's retry) removes such a leftover before
it starts. (A fetch of the same destination still running elsewhere then fails to publish, and its own
retry finds the landed file.)
"""

from __future__ import annotations

import errno
import hashlib
import re
import threading
import uuid
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_videogen.download._types import FileKind, StoredFile, _Target, log
from airflow_provider_videogen.download.content import _ContentCheck
from airflow_provider_videogen.download.destination import storage_uri
from airflow_provider_videogen.download.pipeline import _WritePipeline
from airflow_provider_videogen.download.record import _Record, _remove_orphan_record, _write_record
from airflow_provider_videogen.exceptions import VideoDownloadError, VideoStorageError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

# Object stores need at least 5 MiB per multipart part; larger parts mean fewer requests.
_MIN_UPLOAD_BLOCK = 8 * 1024 * 1024


class _StagedFile:
    """A file written under a hidden temporary name beside its destination, then moved into place."""

    def __init__(self, destination: ObjectStoragePath, *, block_size: int, kind: FileKind = "video") -> None:
        self.destination = destination
        self.fs = destination.fs
        self.block_size = block_size
        self.kind = kind
        self.written = 0
        self._sha = hashlib.sha256()
        self._pipeline = _WritePipeline()
        self._content = _ContentCheck(kind)
        self._file: Any = None
        self._temp: str | None = None
        self._lock = threading.RLock()

    def open(self) -> None:
        parent = self.destination.parent
        if (self.destination.protocol or "file") in ("file", "local"):
            # Object stores have no folders to create (and creating one could create a bucket).
            self.fs.makedirs(parent.path, exist_ok=True)
        self._temp = f"{parent.path.rstrip('/')}/{_temporary_name(self.destination.name)}"
        self._file = self.fs.open(self._temp, "wb", block_size=self.block_size)

    def buffer(self, size: int) -> memoryview:
        """Return a free buffer of ``size`` bytes to read the next chunk into (see :meth:`write`)."""
        return self._pipeline.buffer(size)

    def write(self, chunk: bytes | memoryview) -> None:
        """Hash and write ``chunk`` (in the background when large): a view of :meth:`buffer` is not copied."""
        if self._file is None:
            raise VideoDownloadError("The temporary file is closed (the copy was cancelled).")
        self._content.feed(chunk)
        self._pipeline.submit(chunk, self._sha.update, self._file.write)
        self.written += len(chunk)

    def drain(self) -> None:
        """Wait until every chunk given is hashed and written; raise the first error that came of it."""
        self._pipeline.drain()

    def hexdigest(self) -> str:
        self._pipeline.drain()
        return self._sha.hexdigest()

    def content_problem(self) -> str | None:
        """Why the bytes written are not a file of their kind, or ``None`` when they look right."""
        return self._content.problem()

    def restart(self) -> None:
        """Throw away what was written and start a new temporary file."""
        self.discard()
        self.written = 0
        self._sha = hashlib.sha256()
        self._pipeline = _WritePipeline()
        self._content = _ContentCheck(self.kind)
        self.open()

    def close(self) -> None:
        self._pipeline.drain()
        if self._file is not None:
            self._file.close()
            self._file = None

    def publish(self) -> None:
        """Move the complete file into place (replacing what is there)."""
        if self._temp is None:
            raise VideoDownloadError("Nothing to publish: the temporary file is gone (cancelled?).")
        self.fs.mv(self._temp, self.destination.path)
        self._temp = None
        self._pipeline.close()

    @property
    def temporary_path(self) -> str:
        """The temporary file's path on :attr:`fs` (while open or closed, until published or discarded)."""
        if self._temp is None:
            raise VideoDownloadError("The temporary file is gone (the copy was cancelled).")
        return self._temp

    def reread(self, chunk_size: int) -> None:
        """Take the closed temporary file's bytes as written (hashed, content-checked): after a server-side copy."""
        with self.fs.open(self.temporary_path, "rb") as reader:
            while chunk := reader.read(chunk_size):
                self._content.feed(chunk)
                self._sha.update(chunk)
                self.written += len(chunk)

    def discard(self) -> None:
        """Drop the temporary file without ever committing it (idempotent, never raises)."""
        with self._lock:
            file, temp = self._file, self._temp
            self._file = self._temp = None
        self._pipeline.close()  # lets the chunks in hand finish (their errors no longer matter)
        if file is not None:
            _abandon(file)
        if temp is not None:
            try:
                if self.fs.exists(temp):
                    self.fs.rm_file(temp)
            except Exception:
                log.warning("Could not remove the temporary file %s", temp, exc_info=True)


def _publish_with_record(staged: _StagedFile, record: _Record) -> None:
    """Write the record, then move the file into place (removing the record if the move fails)."""
    destination = staged.destination
    # The record goes first: if the move below never happens, a retry sees a record that
    # does not match the old file (or no file) and downloads again.
    _write_record(destination, record)
    try:
        staged.publish()
    except BaseException:
        _remove_orphan_record(destination)
        raise


def _landed_file(target: _Target, size: int, digest: str, *, held_inline: bool = False) -> StoredFile:
    """Log the file just moved into place and return what is stored there (``held_inline``: it came in an answer)."""
    uri = storage_uri(target.destination)
    # The path first: it is what a reader of the log looks for, and a long line cuts its end off.
    log.info(
        "Landed %s (the %s of video task %s%s, %s bytes, sha256 %s).",
        uri,
        target.what,
        target.video_task_id,
        ", held inline" if held_inline else "",
        f"{size:,}",
        digest,
    )
    return StoredFile(uri, size, digest, downloaded=True)


def _temporary_name(name: str, unique: str | None = None) -> str:
    """Return the hidden name a file is written under before it is moved to ``name`` (``unique``: random)."""
    return f".{name}.{unique or uuid.uuid4().hex[:12]}.part"


def _remove_abandoned_temporaries(destination: ObjectStoragePath) -> None:
    """Remove the temporary files of ``destination`` left by fetches killed outright (best effort)."""
    remove_abandoned_temporaries_in(destination.parent, {destination.name})


def remove_abandoned_temporaries_in(folder: ObjectStoragePath, names: Collection[str]) -> None:
    """Remove the temporary files that fetches killed outright left for any of ``names`` in ``folder``.

    One listing of the folder (names only) for all of them, best effort: a landing of many files into one
    folder sweeps here once and lands each with ``sweep=False``, instead of listing the folder once per file.

    :param folder: the folder the files land in.
    :param names: the file names (not paths) whose temporaries are removed; any other file is left alone.
    """
    if not names:
        return
    try:
        listed = folder.fs.ls(folder.path.rstrip("/"), detail=False)
    except Exception:  # e.g. no such folder yet, or listing not allowed
        log.debug("Could not look for abandoned temporary files in %s", storage_uri(folder), exc_info=True)
        return
    _remove_temporaries_of(folder.fs, listed, set(names))


_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.part")


def _remove_temporaries_of(fs: Any, paths: Iterable[Any], names: set[str]) -> None:
    """Remove each of ``paths`` that is the temporary file of one of ``names`` (see :func:`_temporary_name`)."""
    for path in paths:
        temporary = _TEMPORARY.fullmatch(str(path).rsplit("/", 1)[-1])
        if temporary is None or temporary["name"] not in names:
            continue
        try:
            fs.rm_file(path)
        except Exception:  # another retry removed it first, or removing is not allowed
            log.debug("Could not remove %s", path, exc_info=True)
        else:
            log.warning("Removed %s, left by an earlier try that was killed while copying.", path)


def _abandon(file: Any) -> None:
    """Close a file being written without committing its content where the backend allows it."""
    from fsspec.spec import AbstractBufferedFile

    try:
        if isinstance(file, AbstractBufferedFile):
            # Closing a buffered remote file uploads and commits what it holds; discarding (e.g.
            # aborting an S3 multipart upload) and marking it closed leaves nothing behind instead.
            file.discard()
            file.closed = True
        else:
            file.close()
    except Exception:
        log.debug("Abandoning a temporary file failed", exc_info=True)


@contextmanager
def _storage_errors(target: _Target) -> Iterator[None]:
    """Turn a storage failure (disk full, read-only, no permission) into the provider's error naming the destination."""
    try:
        yield
    except OSError as error:
        if isinstance(error, requests.RequestException):
            raise
        reason = error.strerror or str(error) or type(error).__name__
        name = errno.errorcode.get(error.errno) if error.errno is not None else None
        code = f" ({name})" if name else ""
        raise VideoStorageError(
            f"Could not store the {target.what} of video task {target.video_task_id} at "
            f"{storage_uri(target.destination)}: {reason}{code}. Nothing was left at the destination; check its "
            "free space and write permission, then retry the task.",
            video_task_id=target.video_task_id,
        ) from error
