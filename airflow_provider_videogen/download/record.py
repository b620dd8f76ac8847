"""Integrity records: ``<name>.videogen.json`` beside each landed file, and re-reading a landed file.

The record holds the video task id, the file's kind, SHA-256 and size, and the host's ETag and
``Last-Modified``; it is written just before the file is moved into place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from airflow_provider_videogen.download._types import _Target, log
from airflow_provider_videogen.download.destination import storage_uri
from airflow_provider_videogen.transport import redact_url

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_videogen.download.remote import _Remote

RECORD_SUFFIX = ".videogen.json"
"""Suffix of the integrity record written beside each landed file."""


@dataclass(frozen=True)
class _Record:
    """The integrity record kept beside a landed file (``<name>.videogen.json``)."""

    video_task_id: str
    kind: str
    sha256: str
    size_bytes: int
    etag: str | None
    last_modified: str | None
    source: str
    written_at: str

    @classmethod
    def build(cls, target: _Target, remote: _Remote, size: int, digest: str) -> _Record:
        return cls(
            video_task_id=target.video_task_id,
            kind=target.kind,
            sha256=digest,
            size_bytes=size,
            etag=remote.etag,
            last_modified=remote.last_modified,
            source=redact_url(target.url).removesuffix("?…"),
            written_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    def describes(self, target: _Target) -> bool:
        return self.video_task_id == target.video_task_id and self.kind == target.kind

    def matches(self, remote: _Remote) -> bool:
        """Whether the remote file is the one recorded: same size, and same validators where both are known."""
        if remote.total is not None and remote.total != self.size_bytes:
            return False
        if remote.etag and self.etag and remote.etag != self.etag:
            return False
        return not (remote.last_modified and self.last_modified and remote.last_modified != self.last_modified)

    def describe(self) -> str:
        return f"{self.kind} of video task {self.video_task_id}, {self.size_bytes} bytes"

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, sort_keys=True).encode() + b"\n"


def _remove_orphan_record(destination: ObjectStoragePath) -> None:
    """Remove the record just written when its file could not be moved into place and no file is there."""
    try:
        if not destination.fs.exists(destination.path):
            destination.fs.rm_file(_record_path(destination))
    except Exception:
        log.warning("Could not remove the integrity record beside %s", storage_uri(destination), exc_info=True)


def _record_path(destination: ObjectStoragePath) -> str:
    return destination.path + RECORD_SUFFIX


def _read_record(destination: ObjectStoragePath) -> _Record | None:
    """Read the integrity record beside a file; ``None`` if absent or unreadable (then nothing is trusted)."""
    fs, path = destination.fs, _record_path(destination)
    try:
        if not fs.exists(path):
            return None
        data = json.loads(fs.cat_file(path))
        return _Record(
            video_task_id=str(data["video_task_id"]),
            kind=str(data["kind"]),
            sha256=str(data["sha256"]).lower(),
            size_bytes=int(data["size_bytes"]),
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            source=str(data.get("source", "")),
            written_at=str(data.get("written_at", "")),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("Ignoring the unreadable integrity record %s: %s", path, error)
        return None


def _write_record(destination: ObjectStoragePath, record: _Record) -> None:
    # One small write: a single PUT on object stores; a torn local write only makes the record unreadable.
    destination.fs.pipe_file(_record_path(destination), record.to_json())


def _size(path: ObjectStoragePath) -> int:
    return int(path.fs.size(path.path))


def _hash_file(path: ObjectStoragePath, chunk_size: int) -> str:
    """Stream a stored file and return its hex SHA-256."""
    digest = hashlib.sha256()
    with path.fs.open(path.path, "rb", block_size=chunk_size) as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
