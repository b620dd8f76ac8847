"""Landing a video the service returns inside an API answer (Vertex's ``bytesBase64Encoded``), decoded as it streams.

Such an answer is tens of MB of base64 in a JSON object: it is never held whole. The query that
said the task succeeded dropped the value as it read the answer
(:class:`~airflow_provider_videogen.transport.ElidedMembers`); landing posts the query again and
decodes the one member's value block by block into a hidden temporary file beside the
destination, hashed as it is written. The file is then checked (a whole
MP4), recorded in the integrity record and moved into place, by the same rules as a download; a
retry after a landed copy verifies it and fetches nothing. An answer cut short, or whose member is
not valid base64, lands nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_videogen import transport
from airflow_provider_videogen.download._types import FileKind, StoredFile, _Target
from airflow_provider_videogen.download.content import _KIND_DESCRIPTIONS
from airflow_provider_videogen.download.destination import check_destination, storage_uri
from airflow_provider_videogen.download.existing import landed_copy
from airflow_provider_videogen.download.record import _Record
from airflow_provider_videogen.download.remote import _Remote
from airflow_provider_videogen.download.staging import (
    _MIN_UPLOAD_BLOCK,
    _landed_file,
    _publish_with_record,
    _StagedFile,
    _storage_errors,
)
from airflow_provider_videogen.exceptions import VideoContentError, VideoDownloadError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.styles.base import FileSource

#: Bytes of the answer read per step (decoded: three quarters of it).
_READ_BLOCK = 1024 * 1024


class InlineMember:
    """Decode the ``index``-th base64 string value of the named JSON members of an answer, fed block by block.

    :param names: the member names (the style's ``elided_answer_members``).
    :param index: which of their values, counted from 0 in the order of the answer.
    """

    _SPACE = 64

    def __init__(self, names: Sequence[str], index: int) -> None:
        alternatives = b"|".join(re.escape(name.encode()) for name in names)
        space = rb"[ \t\r\n]{0,%d}" % self._SPACE
        self._start = re.compile(rb'"(?:' + alternatives + rb')"' + space + b":" + space + b'"')
        self._longest = max(len(name.encode()) for name in names) + 4 + 2 * self._SPACE
        self._index = index
        self._seen = 0
        self._state = "scan"  # scan, skip (another value), value (this one), done
        self._tail = b""
        self._pending = b""

    @property
    def complete(self) -> bool:
        """Whether the whole value was decoded (its closing quote was read)."""
        return self._state == "done"

    def feed(self, block: bytes) -> bytes:
        """Return the video bytes decoded from ``block`` (after what was held back); may be empty."""
        data, self._tail = self._tail + block, b""
        decoded = bytearray()
        position = 0
        while self._state != "done":
            if self._state in ("skip", "value"):
                end = data.find(b'"', position)
                if self._state == "value":
                    decoded += self._decode(data[position : end if end >= 0 else len(data)], final=end >= 0)
                if end < 0:
                    break
                self._state = "done" if self._state == "value" else "scan"
                position = end + 1
                continue
            found = self._start.search(data, position)
            if found is None:
                self._tail = data[max(position, len(data) - self._longest) :]
                break
            position = found.end()
            self._state = "value" if self._seen == self._index else "skip"
            self._seen += 1
        return bytes(decoded)

    def _decode(self, raw: bytes, *, final: bool) -> bytes:
        """Decode base64 text (JSON may write ``/`` escaped), keeping an incomplete quantum for the next block."""
        text = self._pending + raw
        held = b""
        if text.endswith(b"\\") and not final:
            text, held = text[:-1], b"\\"  # half of an escape: its other half comes next
        text = text.replace(b"\\/", b"/")
        if b"\\" in text:
            raise ValueError("the base64 value holds a JSON escape other than \\/")
        usable = len(text) if final else len(text) - len(text) % 4
        self._pending = text[usable:] + held
        try:
            return base64.b64decode(text[:usable], validate=True)
        except binascii.Error as error:
            raise ValueError(f"the base64 value is not valid base64 ({error})") from None


def land_inline_file(
    settings: VideoGenConnectionSettings,
    source: FileSource,
    destination: ObjectStoragePath,
    *,
    video_task_id: str,
    kind: FileKind = "video",
    overwrite: bool = False,
    chunk_size: int,
    sweep: bool = True,
) -> StoredFile:
    """Land the file held inline in the answer to ``source`` (its ``inline_body`` POSTed to its ``url``).

    :param settings: the connection: its credential authorises the POST (to its own origin only) and is
        masked in every message.
    :param source: where the file is (the style's ``file_source``, with ``inline_body``).
    :param destination: the file's path (not a folder).
    :param video_task_id: the video task the file belongs to (recorded, and used in messages).
    :param kind: ``video`` or ``last_frame``.
    :param overwrite: replace a destination that holds a different file instead of failing.
    :param chunk_size: bytes written per step of the temporary file.
    :param sweep: first remove the temporary files a killed earlier try left for ``destination`` (one listing
        of its folder); off where the caller swept the folder once for many files
        (:func:`~.staging.remove_abandoned_temporaries_in`).
    :raises VideoContentError: the answer holds no whole file of its kind; nothing is stored.
    :raises VideoDownloadError: the answer could not be read whole.
    :raises VideoDestinationExistsError: the destination holds another file and ``overwrite`` is off.
    """
    check_destination(storage_uri(destination))
    target = _Target.named(source.url, destination, video_task_id, kind, authenticated=True)
    # Nothing tells the size or a digest before the answer is read: a copy is known by its record.
    remote = _Remote(total=None, etag=None, last_modified=None, sha256=None)
    existing = landed_copy(target, overwrite=overwrite, probe=lambda: remote, chunk_size=chunk_size, sweep=sweep)
    if existing is not None:
        return existing
    return _land_answer(settings, source, target, remote, chunk_size)


def _land_answer(
    settings: VideoGenConnectionSettings, source: FileSource, target: _Target, remote: _Remote, chunk_size: int
) -> StoredFile:
    """Decode the file from the answer into a staged file, check it, and publish it with its record.

    A failure discards the staged file: nothing is left at the destination.
    """
    staged = _StagedFile(target.destination, block_size=max(chunk_size, _MIN_UPLOAD_BLOCK), kind=target.kind)
    try:
        with _storage_errors(target):
            staged.open()
        _stream_into(settings, source, staged, target)
        with _storage_errors(target):
            staged.close()
        size, digest = staged.written, staged.hexdigest()
        _check_content(settings, target, staged)
        with _storage_errors(target):
            _publish_with_record(staged, _Record.build(target, remote, size, digest))
    except BaseException:
        staged.discard()
        raise
    return _landed_file(target, size, digest, held_inline=True)


def _stream_into(
    settings: VideoGenConnectionSettings, source: FileSource, staged: _StagedFile, target: _Target
) -> None:
    """POST the query again and write the decoded member into ``staged`` as the answer streams in."""
    body, headers = _query_request(settings, source)
    member = InlineMember(settings.style.elided_answer_members, source.inline_index)
    where = f"the {target.what} of video task {target.video_task_id}"
    session = transport.new_session()
    try:
        with session.post(
            source.url, data=body, headers=headers, stream=True, allow_redirects=False, timeout=(10.0, 60.0)
        ) as response:
            _check_status(settings, response, where, target)
            for block in response.iter_content(_READ_BLOCK):
                decoded = member.feed(block)
                if decoded:
                    staged.write(decoded)
    except ValueError as error:  # not base64: a broken or foreign answer
        raise VideoContentError(
            f"{where[0].upper()}{where[1:]} is not valid in the service's answer: {error}. Nothing was stored.",
            video_task_id=target.video_task_id,
        ) from None
    except requests.RequestException as error:
        raise VideoDownloadError(
            f"Could not read {where}: {settings.excerpt(f'{type(error).__name__}: {error}')}. The task may be retried.",
            video_task_id=target.video_task_id,
        ) from None
    finally:
        session.close()
    if not member.complete:
        raise VideoContentError(
            f"The service's answer ended before the whole of {where} (the answer was cut short, or holds no "
            "video at that place). Nothing was stored; the task may be retried.",
            video_task_id=target.video_task_id,
        )


def _query_request(settings: VideoGenConnectionSettings, source: FileSource) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers of the query that answers with the file: the key for the API's own origin only."""
    credential: Any = settings.credential
    body = json.dumps(source.inline_body, separators=(",", ":")).encode()
    headers = {**credential.request_headers("query"), "Content-Type": "application/json"}
    if getattr(credential, "signs", False):
        headers = credential.sign("POST", source.url, body, headers)  # to the API's own origin only
    else:
        headers = {**headers, **credential.headers_for(source.url)}
    return body, headers


def _check_status(
    settings: VideoGenConnectionSettings, response: requests.Response, where: str, target: _Target
) -> None:
    """Raise unless the service answered 200, naming its status and the start of its answer."""
    if response.status_code != 200:
        excerpt = settings.excerpt(response.raw.read(2000, decode_content=True).decode(errors="replace"))
        raise VideoDownloadError(
            f"Could not read {where}: the service answered HTTP {response.status_code} ({excerpt}).",
            video_task_id=target.video_task_id,
        )


def _check_content(settings: VideoGenConnectionSettings, target: _Target, staged: _StagedFile) -> None:
    """Raise unless the decoded bytes are a whole file of their kind (nothing is stored then)."""
    problem = staged.content_problem()
    if problem is not None:
        raise VideoContentError(
            f"The {target.what} held in the answer for video task {target.video_task_id} is not "
            f"{_KIND_DESCRIPTIONS[target.kind]}: {settings.redact(problem)}. Nothing was stored.",
            video_task_id=target.video_task_id,
        )
