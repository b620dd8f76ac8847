"""Idempotency: a destination that already holds this task's file is a landed file, not a new download.

When the destination exists, its size is compared with the remote ``Content-Length`` (read with a
one-byte ranged ``GET``: pre-signed URLs are usually signed for ``GET`` only, so ``HEAD`` cannot be
used) and the existing file is re-hashed and compared with the host's SHA-256 or, failing that, with
the integrity record when the record names the same task and the same remote file (size and
validators). A match means the file is already landed and nothing is downloaded; that also holds
after the URL expired, as long as the record and the re-hash agree. Anything else is a different or
unverifiable file: an error, unless ``overwrite`` is set.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_videogen.download._types import StoredFile, _Target, log
from airflow_provider_videogen.download.destination import storage_uri
from airflow_provider_videogen.download.record import RECORD_SUFFIX, _hash_file, _read_record, _Record, _size
from airflow_provider_videogen.download.remote import _Remote
from airflow_provider_videogen.download.staging import _remove_abandoned_temporaries
from airflow_provider_videogen.exceptions import (
    VideoDestinationExistsError,
    VideoFileKeyRefusedError,
    VideoURLExpiredError,
)


def landed_copy(
    target: _Target, *, overwrite: bool, probe: Callable[[], _Remote], chunk_size: int, sweep: bool
) -> StoredFile | None:
    """Return the destination's file when it is already this task's; ``None`` when the file is to be copied.

    First removes the temporary files a killed earlier try left for the destination (when ``sweep``),
    then, when the destination exists, judges it by :func:`existing_copy`.

    :raises VideoDestinationExistsError: the destination holds another file and ``overwrite`` is off.
    """
    destination = target.destination
    if sweep:
        _remove_abandoned_temporaries(destination)
    if not destination.fs.exists(destination.path):
        return None
    return existing_copy(target, overwrite=overwrite, probe=probe, chunk_size=chunk_size)


def existing_copy(
    target: _Target, *, overwrite: bool, probe: Callable[[], _Remote], chunk_size: int
) -> StoredFile | None:
    """Return the existing file if it is this task's complete file; else raise, or return ``None`` to replace it.

    :param probe: reads the remote file's size and validators (retried as the policy allows).
    :param chunk_size: bytes read per step when the existing file is re-hashed.
    :raises VideoDestinationExistsError: the destination holds another file and ``overwrite`` is off.
    """
    destination = target.destination
    uri = storage_uri(destination)
    record = _read_record(destination)
    try:
        remote = probe()
    except (VideoURLExpiredError, VideoFileKeyRefusedError) as refusal:
        # The file cannot be read, but a file already verified as this task's is still a complete copy.
        recorded = _recorded_copy(target, record, refusal, chunk_size)
        if recorded is not None:
            return recorded
        raise
    size = _size(destination)
    expected, problem = _expected_sha256(target, record, remote, size)
    if expected is not None:
        digest = _hash_file(destination, chunk_size)
        if digest == expected:
            log.info(
                "%s already holds the %s of video task %s; nothing to download.", uri, target.what, target.video_task_id
            )
            return StoredFile(uri, size, digest, downloaded=False)
        problem = f"its SHA-256 {digest} differs from the expected {expected}"
    if overwrite:
        log.info("Replacing %s (overwrite=True): %s.", uri, problem)
        return None
    raise VideoDestinationExistsError(
        f"The destination {uri} already exists and is not the {target.what} of video task "
        f"{target.video_task_id}: {problem}. Pass overwrite=True to replace it, or choose another destination.",
        video_task_id=target.video_task_id,
    )


def _expected_sha256(
    target: _Target, record: _Record | None, remote: _Remote, size: int
) -> tuple[str | None, str | None]:
    """Return the SHA-256 the existing file must have to be this task's file, or why it cannot be."""
    if remote.total is not None and size != remote.total:
        return None, f"it is {size} bytes and the {target.what} is {remote.total} bytes"
    if remote.sha256:
        return remote.sha256, None
    if record is not None and record.describes(target) and record.matches(remote):
        return record.sha256, None
    if record is None:
        return None, (
            f"it has no integrity record ({target.destination.name}{RECORD_SUFFIX}) and the file host "
            "advertises no SHA-256, so it cannot be verified"
        )
    return None, f"its integrity record describes another file ({record.describe()})"


def _recorded_copy(target: _Target, record: _Record | None, refusal: Exception, chunk_size: int) -> StoredFile | None:
    """Return the existing file when its record and a re-hash show it is this task's (the URL is refused)."""
    destination = target.destination
    if record is None or not record.describes(target) or _size(destination) != record.size_bytes:
        return None
    digest = _hash_file(destination, chunk_size)
    if digest != record.sha256:
        return None
    log.warning(
        "The %s of video task %s cannot be read (%s), but %s already holds it "
        "(size and SHA-256 match its integrity record); nothing to download.",
        target.what,
        target.video_task_id,
        "its URL has expired" if isinstance(refusal, VideoURLExpiredError) else "the service refused the API key",
        storage_uri(destination),
    )
    return StoredFile(storage_uri(destination), record.size_bytes, digest, downloaded=False)
