"""Land generated videos in object storage: streamed, verified, atomic and idempotent.

A video task's file URLs are pre-signed URLs on a file host (not the API host) that expire about
24 hours after generation, so copying the file somewhere durable is what keeps a generation. This
module does that copy for :class:`~airflow_provider_videogen.operators.videogen.FetchVideoOperator`:

Streaming
    The body is read in large chunks (8 MiB by default) straight into a few reused buffers; each
    chunk is hashed and written by two helper threads while the next one arrives, so at most three
    chunks are in memory whatever the size of the video, none is copied on its way, and the copy
    runs at the speed of its slowest stage (the network, the SHA-256 or the storage), not their sum.

Integrity
    The byte count is checked against ``Content-Length``. A short or broken download is retried:
    resumed with ``Range`` (guarded by ``If-Range`` with the file's ETag or ``Last-Modified``, so two
    different files are never spliced) where the host supports it, else restarted from the first
    byte. A break loses the chunk being read, so after a break that brought nothing new, reads get
    smaller. The SHA-256 of what was written is always computed while writing; it is checked against
    the host's own SHA-256 when the host advertises one (``x-amz-checksum-sha256``, ``Repr-Digest``,
    ``Digest`` or ``x-checksum-sha256``). ETags are used only as opaque validators, never as hashes:
    an S3-style ETag is the MD5 of single-part uploads only, and the simulator's is not a content
    hash at all.

Atomic publication
    Bytes go to a hidden temporary file beside the destination (``.<name>.<random>.part``) that is
    moved into place only once complete and verified; every failure path (errors, a broken stream,
    :meth:`VideoDownloader.cancel` from ``on_kill``) removes it. On a local file system the move is a
    ``rename`` in the same folder, which is atomic; on an object store it is a server-side copy and
    delete, so the destination key only ever appears whole, and a temporary object abandoned midway
    has its multipart upload aborted rather than committed. A process killed outright (SIGKILL, a
    lost worker) can leave its hidden ``.part`` file (or a pending multipart upload) behind, never a
    partial file at the destination; the next fetch of the same destination (the task's retry)
    removes such a leftover before it starts. (A fetch of the same destination still running
    elsewhere then fails to publish, and its own retry finds the landed file.)

Idempotency
    Beside each landed file an integrity record ``<name>.videogen.json`` is written (just before
    the file is moved into place) with the video task id, the SHA-256, the size, and the host's
    ETag and ``Last-Modified``. When the destination already exists, its size is compared with the
    remote ``Content-Length`` (read with a one-byte ranged ``GET``: pre-signed URLs are usually
    signed for ``GET`` only, so ``HEAD`` cannot be used) and the existing file is re-hashed and
    compared with the host's SHA-256 or, failing that, with the record when the record names the
    same task and the same remote file (size and validators). A match means the video is already
    landed and nothing is downloaded; that also holds after the URL expired, as long as the record
    and the re-hash agree. Anything else is a different or unverifiable file: an error, unless
    ``overwrite`` is set.

Credentials
    The file host gets no credentials: a plain session separate from the API hook's is used, and its
    adapter strips any ``Authorization`` header (e.g. one ``requests`` would take from ``.netrc``),
    including on redirects. Only ``http`` and ``https`` URLs are followed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import glob
import hashlib
import http.client
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type

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
from airflow_provider_videogen.generation_request import image_problem
from airflow_provider_videogen.retry import RetryPolicy, parse_retry_after
from airflow_provider_videogen.styles.base import FileSource
from airflow_provider_videogen.transport import AddressPolicy, new_session, origin_of, redact_url

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
"""Bytes read from the network and written per step: large, to keep per-chunk Python work negligible."""

RECORD_SUFFIX = ".videogen.json"
"""Suffix of the integrity record written beside each landed file."""

URL_LIFETIME_HOURS = 24
"""How long the services keep a generated file's URL valid."""

FileKind = Literal["video", "last_frame"]

# Statuses with which a pre-signed URL's host says the URL is no longer (or never was) valid.
_REFUSED_STATUSES = frozenset({401, 403, 404, 410})
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Object stores need at least 5 MiB per multipart part; larger parts mean fewer requests.
_MIN_UPLOAD_BLOCK = 8 * 1024 * 1024
_ERROR_BODY_LIMIT = 2048
# Chunks smaller than this are hashed and written inline; larger ones in the background (see _WritePipeline).
_BACKGROUND_HASH_MIN = 256 * 1024
# What a broken stream raises: through requests, or straight from the socket (see VideoDownloader._stream).
_STREAM_ERRORS = (requests.RequestException, OSError, http.client.HTTPException)
# A break loses the chunk being read; after a break without progress, reads shrink down to this.
_MIN_CHUNK_SIZE = 64 * 1024
_XML_TAG_RE = re.compile(r"<(Code|Message)>([^<]{0,300})</\1>")
# A URL's query in a text (requests puts the URL, query and all, into its error messages).
_URL_QUERY_RE = re.compile(r"\?[^\s'\")]+")


# ---- public helpers ----------------------------------------------------------------------------


def require_succeeded(task: VideoTask, video: FileSource | None) -> None:
    """Raise a clear error unless the task succeeded and has a video to fetch.

    :param video: where its video is, as the connection's style says (``None``: it has none).

    :raises VideoTaskFailedError: the task ended failed, cancelled or expired (no retry: it cannot change).
    :raises VideoTaskNotReadyError: the task is still queued or running.
    :raises VideoNotAvailableError: the task succeeded but the API sent no video URL (no retry: a
        finished task does not change).
    """
    from airflow_provider_videogen.video_task import VideoTaskStatus

    if task.status is VideoTaskStatus.SUCCEEDED:
        if video is None:
            raise VideoNotAvailableError(
                f"Video task {task.id} succeeded but the service returned no video URL for it, so there is "
                "nothing to fetch, and a finished task does not change: retrying cannot help. Look at the task "
                "at the service (or through a gateway, at the upstream task).",
                video_task_id=task.id,
            )
        return
    if task.status.is_failure:
        raise VideoTaskFailedError(
            f"Cannot fetch the video: {task.describe_failure()}. The task produced no video; "
            "generate it again (fix the request if the error says it was refused).",
            video_task_id=task.id,
            api_code=task.error_code,
            api_message=task.error_message,
        )
    shown = f" (API status {task.raw_status!r})" if task.raw_status else ""
    raise VideoTaskNotReadyError(
        f"Video task {task.id} is {task.status.value}{shown}, not succeeded: it has no video yet. "
        "Wait for it with VideoTaskSensor (sensor >> fetch) before fetching.",
        video_task_id=task.id,
    )


def last_frame_path(video_path: ObjectStoragePath) -> ObjectStoragePath:
    """Return ``<name>.png`` beside the video (``x.mp4`` -> ``x.png``)."""
    frame = video_path.with_name(f"{video_path.stem or video_path.name}.png")
    if frame.path == video_path.path:
        raise VideoDownloadError(
            f"The video destination {video_path.name!r} ends in .png, where its last frame would go: "
            "name the video file .mp4."
        )
    return frame


def check_file_url(url: str, *, video_task_id: str | None = None) -> str:
    """Return the URL if it is an ``http(s)`` URL with a host, else raise ``VideoDownloadError``.

    Only the web is followed: a ``file:``, ``ftp:`` or other URL from a compromised or confused
    service must not make the worker read local files or reach other protocols.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise VideoDownloadError(
            f"Refusing to download {redact_url(url)!r}: only http and https URLs are followed.",
            video_task_id=video_task_id,
        )
    return url


def storage_uri(path: ObjectStoragePath) -> str:
    """Return a plain URI for a path (``s3://bucket/key``, ``file:///dir/name``), without the connection id."""
    protocol = path.protocol or "file"
    if protocol in ("file", "local"):
        return "file://" + path.path
    return f"{protocol}://{path.path}"


def resolve_destination(
    destination: str | ObjectStoragePath,
    *,
    file_name: str,
    conn_id: str | None = None,
) -> ObjectStoragePath:
    """Return the file path a destination names.

    A string ending in ``/`` (and an ``ObjectStoragePath`` that is an existing folder) is a folder:
    the file is ``file_name`` inside it. Anything else is the file's own path.

    :param destination: a URL such as ``s3://bucket/videos/`` or ``file:///data/x.mp4``, or an absolute
        path; anything relative or malformed is refused (see :func:`check_destination`).
    :param file_name: the name used inside a folder destination.
    :param conn_id: the storage connection; overrides one the path already carries.
    """
    from airflow.sdk import ObjectStoragePath

    if isinstance(destination, ObjectStoragePath):
        conn_id = conn_id or _conn_id_of(destination)
        check_destination(storage_uri(destination))
        path = ObjectStoragePath(storage_uri(destination), conn_id=conn_id)
        text = storage_uri(path) + ("/" if path.is_dir() else "")
    else:
        text = str(destination).strip()
        if not text:
            raise VideoDestinationError(f"The destination is empty: pass {_DESTINATION_FORMS}.")
        check_destination(text)
        path = ObjectStoragePath(text, conn_id=conn_id)
    if text.endswith("/"):
        # Joined as text: joining paths warns on some Airflow versions.
        return ObjectStoragePath(text + file_name, conn_id=conn_id)
    if not path.name:
        raise VideoDestinationError(f"The destination {destination!s} names no file; end a folder with '/'.")
    return path


_DESTINATION_FORMS = (
    "an absolute URL such as s3://bucket/videos/ or file:///data/videos/, or an absolute path such as "
    "/data/videos/ (a folder ends in '/'; the file is then named after the video task)"
)
_LOCAL_PROTOCOLS = ("file", "local")


def check_destination(destination: str) -> None:
    """Raise :class:`VideoDestinationError` unless a file can land at ``destination`` where it says.

    Accepted: an absolute local path (``/data/videos/``), a local file URL (``file:///data/videos/``,
    also ``file:/data/videos/`` and ``local://``), and ``<protocol>://<bucket>/<key>`` of a filesystem
    Airflow has installed (``s3://bucket/videos/``). Refused, before anything is downloaded: relative
    paths and file URLs with a host (``videos/``, ``../up/``, ``~/v/``, ``file://videos/``, which
    would land under the worker's current folder), ``.`` and ``..`` segments, a query, a fragment or
    a control character, a URL with no bucket or only a bucket, a password in the URL (the storage
    connection holds credentials), web addresses and unknown protocols.
    """
    shown = destination
    try:
        parts = urlsplit(destination)
        if parts.password is not None:
            # Never echo a credential: show the URL with the password masked.
            shown = destination.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:  # e.g. an unbalanced '[' in the host
        parts = None

    def refuse(problem: str) -> VideoDestinationError:
        return VideoDestinationError(f"The destination {shown!r} {problem}: pass {_DESTINATION_FORMS}.")

    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in destination):
        raise refuse("contains a control character")
    if parts is None:
        raise refuse("is not a well-formed URL")
    protocol = parts.scheme.lower() if not destination.startswith("/") else ""
    if protocol and (parts.query or destination.endswith("?")):
        raise refuse("has a query ('?...'), which no storage path takes")
    if protocol and (parts.fragment or destination.endswith("#")):
        raise refuse("has a fragment ('#...'), which no storage path takes")
    path = parts.path if protocol else destination
    if protocol in ("http", "https"):
        raise refuse("is a web address: files are downloaded from the web, and land in storage")
    if protocol and not _has_filesystem(protocol):
        raise refuse(f"uses {protocol}:, for which no installed filesystem is registered in Airflow")
    if parts.password is not None:
        raise refuse("holds a password: put the storage credentials in a connection and pass its id as dest_conn_id")
    if protocol in ("", *_LOCAL_PROTOCOLS):
        if parts.netloc and protocol:
            raise refuse(
                "names a host, where a local file URL takes three slashes (file:///absolute/path); "
                "it would land under the worker's current folder"
            )
        if not path.startswith("/"):
            raise refuse("is a relative path: it would land under the worker's current folder")
    elif not parts.netloc:
        raise refuse(f"names no bucket ({protocol}://bucket/folder/)")
    elif path in ("", "/") and not destination.endswith("/"):
        raise refuse(f"names only the bucket {parts.netloc!r}: add the file or folder in it")
    segments = path.split("/")
    for dots in ("..", "."):
        if dots in segments:
            raise refuse(f"has a {dots!r} segment: name the folder itself")


def _has_filesystem(protocol: str) -> bool:
    """Whether Airflow's object storage has a filesystem for ``protocol`` (built in, or from a provider)."""
    from airflow.sdk.io.fs import has_fs

    return has_fs(protocol)


def _conn_id_of(path: ObjectStoragePath) -> str | None:
    # Airflow 3.2+ has a ``conn_id`` property; 3.1 keeps it in the storage options.
    conn_id = getattr(path, "conn_id", None) or path.storage_options.get("conn_id")
    return str(conn_id) if conn_id else None


def advertised_sha256(headers: Mapping[str, str], *, whole_file: bool = True) -> str | None:
    """Return the hex SHA-256 the file host advertises for the file in these headers, if any.

    Understood: ``x-amz-checksum-sha256`` (S3 and compatible stores; base64, full-object checksums
    only: composite multipart checksums end in ``-N`` and are ignored), ``Repr-Digest`` (RFC 9530),
    ``Digest`` (RFC 3230) and ``x-checksum-sha256`` (hex). ``Content-Digest`` describes only the
    bytes of one response, so it is used only for a whole-file (200) answer.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    candidates: list[str | None] = []
    amz = lowered.get("x-amz-checksum-sha256", "")
    checksum_type = lowered.get("x-amz-checksum-type", "FULL_OBJECT").upper()
    if amz and "-" not in amz and checksum_type == "FULL_OBJECT":
        candidates.append(_b64_to_hex(amz))
    for name in ("repr-digest", "content-digest") if whole_file else ("repr-digest",):
        candidates.append(_structured_digest(lowered.get(name, "")))
    candidates.append(_legacy_digest(lowered.get("digest", "")))
    hex_header = lowered.get("x-checksum-sha256", "").strip().lower()
    candidates.append(hex_header if re.fullmatch(r"[0-9a-f]{64}", hex_header) else None)
    return next((c for c in candidates if c), None)


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


# ---- the downloader ----------------------------------------------------------------------------


class VideoDownloader:
    """Copy files from pre-signed URLs into ``ObjectStoragePath`` destinations.

    One downloader serves one task run; :meth:`cancel` (from ``on_kill``, possibly in a signal
    handler) stops the current copy and removes its temporary file.

    :param chunk_size: bytes read and written per step.
    :param retry_policy: how broken or refused-for-now downloads are retried. ``max_attempts`` counts
        consecutive attempts that brought no new bytes (a download that keeps progressing keeps
        going); ``max_seconds`` bounds the time since the last progress.
    :param connect_timeout: seconds to connect to the file host.
    :param read_timeout: seconds to wait for the next bytes before the attempt counts as broken.
    :param session: a ``requests`` session to use (it must carry no credentials); by default one that
        sends no ``Authorization`` header and checks every address against ``address_policy``.
    :param address_policy: which file host addresses may be reached (for the first request and every
        redirect); by default loopback, private and link-local addresses are refused. ``None`` checks nothing.
    :param secrets: texts (the connection's API key) masked in every message and log line this
        downloader writes, should a file host echo them.
    :param credentials: ``(origin, headers carrying the key)`` for files that need the API key (the
        ``/v1/videos`` content route; a bare string is an ``Authorization`` value): sent with
        :meth:`fetch` ``authenticated=True``, to that origin (``scheme://host:port``) only, never to
        another host or across a redirect that leaves it.
    """

    #: Seconds between two progress lines of a download in the log; a download done sooner logs none.
    progress_log_interval: float = 5.0

    def __init__(
        self,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry_policy: RetryPolicy | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        session: requests.Session | None = None,
        address_policy: AddressPolicy | None = AddressPolicy(),  # noqa: B008 (frozen, shared safely)
        secrets: Sequence[str] = (),
        credentials: tuple[str, Mapping[str, str] | str] | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.chunk_size = chunk_size
        self.retry_policy = retry_policy or RetryPolicy(max_seconds=300.0)
        self.timeout = (connect_timeout, read_timeout)
        self.address_policy = address_policy
        self._credentials: tuple[str, dict[str, str]] | None = None
        if credentials is not None:
            origin, headers = credentials
            self._credentials = (origin, {"Authorization": headers} if isinstance(headers, str) else dict(headers))
        key_values = self._credentials[1].values() if self._credentials else ()
        self._secrets = tuple(secret for secret in (*secrets, *key_values) if secret)
        self._session = session
        self._cancelled = threading.Event()
        self._response: requests.Response | None = None
        self._staged: _StagedFile | None = None

    @property
    def session(self) -> requests.Session:
        """The session used for the file host: no credentials, no ``Authorization`` ever sent."""
        if self._session is None:
            self._session = new_session(
                address_policy=self.address_policy,
                strip_authorization=True,
                credentials_origin=self._credentials[0] if self._credentials else None,
                credential_headers=tuple(self._credentials[1]) if self._credentials else (),
            )
        return self._session

    @classmethod
    def for_connection(
        cls,
        settings: VideoGenConnectionSettings,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry_policy: RetryPolicy | None = None,
    ) -> VideoDownloader:
        """Make a downloader for the files of one ``videogen`` connection's tasks.

        Its file hosts are checked against the connection's policy, its key is masked in every text,
        and files that need the key (the ``/v1/videos`` content route) get it from the connection's
        own origin only.
        """
        return cls(
            chunk_size=chunk_size,
            retry_policy=retry_policy or settings.retry_policy,
            address_policy=settings.file_host_policy(),
            secrets=(settings.api_key,),
            credentials=(origin_of(settings.base_url), settings.style.auth_headers(settings.api_key)),
        )

    def land(
        self,
        task: VideoTask,
        settings: VideoGenConnectionSettings,
        destination: str | ObjectStoragePath,
        *,
        dest_conn_id: str | None = None,
        include_last_frame: bool = False,
        overwrite: bool = False,
    ) -> dict[str, Any]:
        """Land a succeeded task's video (and last frame) at ``destination``; return the task and what landed.

        The result is ``task.to_dict()`` plus ``video_path``, ``size_bytes``, ``sha256`` and
        ``last_frame_path``, ``last_frame_size_bytes``, ``last_frame_sha256`` (``None`` without a frame).
        Every source is checked before anything is written, so a bad last frame never leaves half a result.

        :raises VideoNotAvailableError: the task has no video, or no last frame while one is asked for.
        """
        style, task_url = settings.style, settings.task_url(task.id)
        video = style.file_source(task, "video", task_url)
        require_succeeded(task, video)
        assert video is not None
        check_file_url(video.url, video_task_id=task.id)
        frame = style.file_source(task, "last_frame", task_url) if include_last_frame else None
        if include_last_frame:
            if frame is None:
                raise VideoNotAvailableError(
                    f"Video task {task.id} has no last frame: it was created without return_last_frame. "
                    "Set include_last_frame=False, or generate with return_last_frame=True.",
                    video_task_id=task.id,
                )
            check_file_url(frame.url, video_task_id=task.id)
        video_path = resolve_destination(destination, file_name=f"{style.file_stem(task.id)}.mp4", conn_id=dest_conn_id)
        stored = self.fetch(
            video.url, video_path, video_task_id=task.id, overwrite=overwrite, authenticated=video.authenticated
        )
        stored_frame = None
        if frame is not None:
            stored_frame = self.fetch(
                frame.url,
                last_frame_path(video_path),
                video_task_id=task.id,
                kind="last_frame",
                overwrite=overwrite,
                authenticated=frame.authenticated,
            )
        result = task.to_dict()
        result.update(
            video_path=stored.uri,
            size_bytes=stored.size_bytes,
            sha256=stored.sha256,
            last_frame_path=stored_frame.uri if stored_frame else None,
            last_frame_size_bytes=stored_frame.size_bytes if stored_frame else None,
            last_frame_sha256=stored_frame.sha256 if stored_frame else None,
        )
        return result

    def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def cancel(self) -> None:
        """Stop the copy in progress and remove its temporary file (safe to call from a signal handler)."""
        self._cancelled.set()
        response, staged = self._response, self._staged
        if response is not None:
            try:
                response.close()
            except Exception:  # best effort: the download loop notices the cancellation anyway
                log.debug("Closing the download response failed", exc_info=True)
        if staged is not None:
            staged.discard()

    def fetch(
        self,
        url: str,
        destination: ObjectStoragePath,
        *,
        video_task_id: str,
        kind: FileKind = "video",
        overwrite: bool = False,
        authenticated: bool = False,
    ) -> StoredFile:
        """Copy the file at ``url`` to ``destination``; return what is stored there.

        :param url: the pre-signed ``http(s)`` URL of the file.
        :param authenticated: send the downloader's ``credentials`` (only to their origin).
        :param destination: the file's path (not a folder).
        :param video_task_id: the video task the file belongs to (recorded, and used in messages).
        :param kind: ``video`` or ``last_frame``, recorded so one record is never taken for another.
        :param overwrite: replace a destination that holds a different file instead of failing.
        :raises VideoURLExpiredError: the file host refused the URL.
        :raises VideoFileKeyRefusedError: a file route that needs the API key refused it (401/403).
        :raises VideoDestinationExistsError: the destination holds another file and ``overwrite`` is off.
        :raises VideoDestinationError: the destination is relative or malformed (see :func:`check_destination`).
        :raises VideoDownloadError: the download could not be completed within the retry policy.
        """
        check_file_url(url, video_task_id=video_task_id)
        check_destination(storage_uri(destination))
        if authenticated and self._credentials is None:
            raise VideoDownloadError("This file needs the API key, but the downloader was given none.")
        what = "video" if kind == "video" else "last frame"
        target = _Target(
            url=url,
            destination=destination,
            video_task_id=video_task_id,
            kind=kind,
            what=what,
            authenticated=authenticated,
        )
        fs, path = destination.fs, destination.path
        if fs.isdir(path):
            raise VideoDownloadError(
                f"The destination {storage_uri(destination)} is a folder: end the destination with '/' to "
                "write into it, or name a file.",
                video_task_id=video_task_id,
            )
        _remove_abandoned_temporaries(destination)
        if fs.exists(path):
            existing = self._existing_copy(target, overwrite)
            if existing is not None:
                return existing
        return self._download(target)

    # -- existing destination -------------------------------------------------------------------

    def _existing_copy(self, target: _Target, overwrite: bool) -> StoredFile | None:
        """Return the existing file if it is this task's complete file; else raise or return ``None``."""
        destination = target.destination
        uri = storage_uri(destination)
        record = _read_record(destination)
        try:
            remote = self._retrying(lambda: self._probe(target), target)
        except (VideoURLExpiredError, VideoFileKeyRefusedError) as refusal:
            # The file cannot be read, but a file already verified as this task's is still a complete copy.
            if record is not None and record.describes(target) and _size(destination) == record.size_bytes:
                digest = _hash_file(destination, self.chunk_size)
                if digest == record.sha256:
                    log.warning(
                        "The %s of video task %s cannot be read (%s), but %s already holds it "
                        "(size and SHA-256 match its integrity record); nothing to download.",
                        target.what,
                        target.video_task_id,
                        "its URL has expired"
                        if isinstance(refusal, VideoURLExpiredError)
                        else "the service refused the API key",
                        uri,
                    )
                    return StoredFile(uri, record.size_bytes, digest, downloaded=False)
            raise
        size = _size(destination)
        problem = None
        expected: str | None = None
        if remote.total is not None and size != remote.total:
            problem = f"it is {size} bytes and the {target.what} is {remote.total} bytes"
        elif remote.sha256:
            expected = remote.sha256
        elif record is not None and record.describes(target) and record.matches(remote):
            expected = record.sha256
        elif record is None:
            problem = (
                f"it has no integrity record ({destination.name}{RECORD_SUFFIX}) and the file host "
                "advertises no SHA-256, so it cannot be verified"
            )
        else:
            problem = f"its integrity record describes another file ({record.describe()})"
        if expected is not None:
            digest = _hash_file(destination, self.chunk_size)
            if digest == expected:
                log.info(
                    "%s already holds the %s of video task %s; nothing to download.",
                    uri,
                    target.what,
                    target.video_task_id,
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

    def _probe(self, target: _Target) -> _Remote:
        """Read the remote file's size and validators with a one-byte ranged ``GET`` (no body transfer)."""
        with self._get(target, {"Range": "bytes=0-0"}) as response:
            remote = _Remote.from_response(response)
        return remote

    # -- download -------------------------------------------------------------------------------

    def _download(self, target: _Target) -> StoredFile:
        destination = target.destination
        progress = _Progress()
        staged = _StagedFile(destination, block_size=max(self.chunk_size, _MIN_UPLOAD_BLOCK), kind=target.kind)
        self._staged = staged
        try:
            with _storage_errors(target):
                staged.open()
            remote = self._retrying(lambda: self._attempt(target, staged, progress), target, progress)
            size, digest = staged.written, staged.hexdigest()
            if remote.sha256 and remote.sha256 != digest:
                raise VideoIntegrityError(
                    f"The {target.what} of video task {target.video_task_id} arrived corrupted: its SHA-256 is "
                    f"{digest} but the file host advertises {remote.sha256}. Retry the task.",
                    video_task_id=target.video_task_id,
                )
            problem = staged.content_problem()
            if problem is not None:
                kind = _KIND_DESCRIPTIONS[target.kind]
                raise VideoContentError(
                    f"The {target.what} of video task {target.video_task_id} from "
                    f"{urlsplit(target.url).hostname} is not {kind}: {self._clean(problem)}. "
                    "Nothing was stored. The file host may have answered an error or login page, or cut the file "
                    "short; the task may be retried.",
                    video_task_id=target.video_task_id,
                )
            with _storage_errors(target):
                staged.close()
            if self._cancelled.is_set():
                raise self._cancelled_error(target)
            with _storage_errors(target):
                # The record goes first: if the move below never happens, a retry sees a record that
                # does not match the old file (or no file) and downloads again.
                _write_record(destination, _Record.build(target, remote, size, digest))
                try:
                    staged.publish()
                except BaseException:
                    _remove_orphan_record(destination)
                    raise
        except BaseException:
            staged.discard()
            raise
        finally:
            self._staged = None
        uri = storage_uri(destination)
        log.info(
            "Stored the %s of video task %s at %s (%d bytes, sha256 %s).",
            target.what,
            target.video_task_id,
            uri,
            size,
            digest,
        )
        return StoredFile(uri, size, digest, downloaded=True)

    def _attempt(self, target: _Target, staged: _StagedFile, progress: _Progress) -> _Remote:
        """Stream the rest of the file into ``staged`` (resuming or restarting as the host allows)."""
        headers: dict[str, str] = {}
        remote = progress.remote
        if staged.written:
            validator = remote.validator if remote is not None and progress.resumable else None
            if validator:
                headers["Range"] = f"bytes={staged.written}-"
                headers["If-Range"] = validator
            else:
                # Without a validator a resumed range might come from a changed file: start over.
                log.info("The %s cannot be resumed safely; restarting from the first byte.", target.what)
                staged.restart()
        with self._get(target, headers) as response:
            try:
                answer = _Remote.from_response(response)
            except _RetryableDownloadError:
                progress.resumable = False  # a host that garbles ranges gets plain requests from now on
                raise
            if response.status_code == 206:
                if remote is None or answer.range_start != staged.written or answer.total != remote.total:
                    staged.restart()
                    raise _RetryableDownloadError(
                        f"the file host answered {response.headers.get('Content-Range')!r} to a request "
                        f"for the bytes from {headers.get('Range', 'the start')}"
                    )
                if not answer.same_file_as(remote):
                    # A host that ignores If-Range answers a changed file's bytes: never join two files.
                    staged.restart()
                    progress.remote = None
                    raise _RetryableDownloadError(
                        "the file changed at the host since the download began (its ETag or Last-Modified "
                        "differs); starting over"
                    )
                answer = remote
            else:
                if staged.written:
                    log.info("The file host sent the whole %s instead of the rest; restarting.", target.what)
                    staged.restart()
                progress.remote = answer
            # A content coding (despite Accept-Encoding: identity) makes Content-Length count encoded
            # bytes and ranges meaningless: check the bytes off the wire, and never resume.
            encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
            progress.resumable = not encoded
            body_length = _int_header(response.headers.get("Content-Length"))
            first = staged.written
            report = _ProgressReport(target.what, answer.total, self.progress_log_interval, start=first)
            try:
                self._stream(target, response, staged, progress.chunk_size or self.chunk_size, encoded, report)
            except _STREAM_ERRORS as error:
                if self._cancelled.is_set():
                    raise self._cancelled_error(target) from None
                if staged.written == first:
                    # The bytes of a chunk cut short are lost: read smaller pieces so that a host
                    # cutting every response early still lets the copy advance.
                    progress.chunk_size = max((progress.chunk_size or self.chunk_size) // 4, _MIN_CHUNK_SIZE)
                raise _RetryableDownloadError(
                    f"the stream broke after {staged.written} bytes ({type(error).__name__})"
                ) from None
            except VideoDownloadCancelledError:
                raise
            except Exception:
                # A cancel from a signal handler closes the response and the file under the loop.
                if self._cancelled.is_set():
                    raise self._cancelled_error(target) from None
                raise
            finally:
                with _storage_errors(target):
                    staged.drain()  # every byte counted is written (or its storage error raised) by now
                progress.advance(staged.written)
            if self._cancelled.is_set():
                raise self._cancelled_error(target)
            received = response.raw.tell() if encoded else staged.written - first
        if body_length is not None and received != body_length:
            raise _RetryableDownloadError(f"the body ended after {received} of {body_length} bytes")
        if answer.total is not None and not encoded and staged.written != answer.total:
            staged.restart()
            raise _RetryableDownloadError(f"got {staged.written} bytes of a {answer.total}-byte file")
        if answer.total is None and body_length is None:
            log.warning(
                "The file host sent no Content-Length for the %s of video task %s: its size cannot be checked.",
                target.what,
                target.video_task_id,
            )
        return answer

    def _stream(
        self,
        target: _Target,
        response: requests.Response,
        staged: _StagedFile,
        chunk_size: int,
        encoded: bool,
        report: _ProgressReport,
    ) -> None:
        """Copy the body into ``staged``, chunk by chunk, logging progress through ``report``."""
        # Straight from the HTTP response into the staged file's buffers: urllib3's read(amt) would copy
        # every chunk two or three times. Its content decoding is not needed for an identity body.
        readinto = None if encoded else getattr(getattr(response.raw, "_fp", None), "readinto", None)
        if readinto is None:
            for chunk in response.iter_content(chunk_size):
                if self._cancelled.is_set():
                    raise self._cancelled_error(target)
                with _storage_errors(target):
                    staged.write(chunk)
                report.update(staged.written)
            return
        while not self._cancelled.is_set():
            with _storage_errors(target):
                block = staged.buffer(chunk_size)
            received = readinto(block)
            if not received:
                return
            with _storage_errors(target):
                staged.write(block[:received])
            report.update(staged.written)
        raise self._cancelled_error(target)

    def _get(self, target: _Target, headers: dict[str, str]) -> requests.Response:
        """Send a ``GET`` to the file host and return the streamed response once its status is good."""
        # Ask for the bytes as stored, so Content-Length counts the file's own bytes.
        headers = {"Accept-Encoding": "identity", **headers}
        if target.authenticated and self._credentials is not None:
            # The session's adapter drops it for any other origin, redirects included.
            headers.update(self._credentials[1])
        try:
            response = self.session.get(target.url, headers=headers, stream=True, timeout=self.timeout)
        except requests.exceptions.InvalidSchema as error:
            raise VideoDownloadError(
                f"The file host redirected the {target.what} download away from http(s): {self._clean(str(error))}",
                video_task_id=target.video_task_id,
            ) from None
        except requests.RequestException as error:
            raise _RetryableDownloadError(self._clean(f"{type(error).__name__}: {error}")) from None
        self._response = response
        if response.status_code in (200, 206):
            return response
        try:
            self._raise_for_status(response, target)
        finally:
            response.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for_status(self, response: requests.Response, target: _Target) -> None:
        status = response.status_code
        detail = self._clean(_error_detail(response))
        if target.authenticated and status in (401, 403):
            # This route is the API's own and takes the key: its refusal is about the key, not the URL's age.
            raise VideoFileKeyRefusedError(
                f"The service refused the API key for the {target.what} of video task {target.video_task_id} "
                f"at {redact_url(target.url)} (HTTP {status}{': ' + detail if detail else ''}). This file route "
                "needs the connection's API key, and the key is wrong, revoked or lacks access to the file "
                "(the URL has not expired). Check the API key of the connection, then retry the task.",
                video_task_id=target.video_task_id,
                http_status=status,
            )
        if status in _REFUSED_STATUSES:
            raise VideoURLExpiredError(
                f"The file host refused the {target.what} URL of video task {target.video_task_id} "
                f"(HTTP {status}{': ' + detail if detail else ''}): the URL has expired or was revoked. "
                f"Generated files must be fetched within {URL_LIFETIME_HOURS} hours of generation; "
                "generate the video again.",
                video_task_id=target.video_task_id,
                http_status=status,
            )
        if status == 416:
            # Our range no longer fits the file: start over rather than guess.
            self._staged_restart()
            raise _RetryableDownloadError(f"HTTP 416 for a ranged request{': ' + detail if detail else ''}")
        if status in _TRANSIENT_STATUSES:
            raise _RetryableDownloadError(
                f"HTTP {status}{': ' + detail if detail else ''}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        raise VideoDownloadError(
            f"The file host answered HTTP {status} for the {target.what} of video task "
            f"{target.video_task_id}{': ' + detail if detail else ''}.",
            video_task_id=target.video_task_id,
            http_status=status,
        )

    def _staged_restart(self) -> None:
        if self._staged is not None and self._staged.written:
            self._staged.restart()

    # -- retries --------------------------------------------------------------------------------

    def _retrying(self, call: Any, target: _Target, progress: _Progress | None = None) -> Any:
        """Run ``call`` until it returns, retrying broken attempts as the policy allows."""
        policy = self.retry_policy
        progress = _Progress() if progress is None else progress

        def stop(state: RetryCallState) -> bool:
            if self._cancelled.is_set():
                return True
            streak = progress.barren_attempts
            waited = time.monotonic() - progress.last_progress_at
            return streak >= policy.max_attempts or waited + policy.backoff(streak) > policy.max_seconds

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return policy.wait_after(progress.barren_attempts, getattr(error, "retry_after", None))

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "Downloading the %s of video task %s was interrupted (%s); retrying in %.1f s.",
                target.what,
                target.video_task_id,
                error,
                state.upcoming_sleep,
            )

        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(_RetryableDownloadError),
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )

        def attempt() -> Any:
            progress.begin_attempt()
            return call()

        try:
            return retrying(attempt)
        except _RetryableDownloadError as error:
            if self._cancelled.is_set():
                raise self._cancelled_error(target) from None
            raise VideoDownloadError(
                f"Could not download the complete {target.what} of video task {target.video_task_id} from "
                f"{redact_url(target.url)}: {error}. Gave up after {progress.attempts} attempts, the last "
                f"{progress.barren_attempts} without progress; the Airflow task may be retried.",
                video_task_id=target.video_task_id,
            ) from None

    def _clean(self, text: str) -> str:
        """Mask the secrets and drop every URL query from a text bound for a message or log line."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _URL_QUERY_RE.sub("?…", text)

    def _sleep(self, seconds: float) -> None:
        # Wake up at once when cancelled rather than finishing the backoff.
        self._cancelled.wait(seconds)

    def _cancelled_error(self, target: _Target) -> VideoDownloadCancelledError:
        return VideoDownloadCancelledError(
            f"Downloading the {target.what} of video task {target.video_task_id} was cancelled.",
            video_task_id=target.video_task_id,
        )


# ---- internals ---------------------------------------------------------------------------------


class _RetryableDownloadError(Exception):
    """One attempt broke in a way another attempt may fix."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Target:
    url: str
    destination: ObjectStoragePath
    video_task_id: str
    kind: FileKind
    what: str
    authenticated: bool = False


@dataclass(frozen=True)
class _Remote:
    """What the file host says about the file."""

    total: int | None
    etag: str | None
    last_modified: str | None
    sha256: str | None
    range_start: int | None = None

    def same_file_as(self, first: _Remote) -> bool:
        """Whether this answer's validators agree with those of the first answer (where both have them)."""
        if self.etag and first.etag and self.etag != first.etag:
            return False
        return not (self.last_modified and first.last_modified and self.last_modified != first.last_modified)

    @property
    def validator(self) -> str | None:
        """The value for ``If-Range``: a strong ETag, else ``Last-Modified`` (weak ETags are not allowed)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified

    @classmethod
    def from_response(cls, response: requests.Response) -> _Remote:
        headers = response.headers
        total: int | None = None
        start: int | None = None
        if response.status_code == 206:
            match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", headers.get("Content-Range", ""))
            if match is None:
                raise _RetryableDownloadError(f"unusable Content-Range {headers.get('Content-Range')!r}")
            start = int(match.group(1))
            total = int(match.group(3)) if match.group(3) != "*" else None
        else:
            total = _int_header(headers.get("Content-Length"))
        return cls(
            total=total,
            etag=headers.get("ETag"),
            last_modified=headers.get("Last-Modified"),
            sha256=advertised_sha256(headers, whole_file=response.status_code == 200),
            range_start=start,
        )


class _Progress:
    """How far a copy got across attempts, so that attempts that bring new bytes are not failures."""

    def __init__(self) -> None:
        self.best = 0
        self.remote: _Remote | None = None
        self.resumable = True
        self.chunk_size: int | None = None
        self.attempts = 0
        self.last_progress_at = time.monotonic()
        self._attempt_with_progress = 0

    def begin_attempt(self) -> None:
        self.attempts += 1

    def advance(self, written: int) -> None:
        if written > self.best:
            self.best = written
            self.last_progress_at = time.monotonic()
            self._attempt_with_progress = self.attempts

    @property
    def barren_attempts(self) -> int:
        """Attempts since the last one that brought new bytes."""
        return self.attempts - self._attempt_with_progress


class _ProgressReport:
    """Log how far one download attempt got (bytes, percent, rate) every ``interval`` seconds, and never sooner."""

    def __init__(self, what: str, total: int | None, interval: float, *, start: int) -> None:
        self.what = what
        self.total = total
        self.interval = interval
        self.started = self.last = time.monotonic()
        self.first_bytes = start  # a resumed attempt starts with bytes already there

    def update(self, written: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        rate = (written - self.first_bytes) / max(now - self.started, 1e-6)
        share = f" of {_mib(self.total)} ({100 * written / self.total:.0f}%)" if self.total else ""
        log.info("Downloading the %s: %s%s at %s/s.", self.what, _mib(written), share, _mib(rate))


def _mib(size: float) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


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


def _temporary_name(name: str, unique: str | None = None) -> str:
    """Return the hidden name a file is written under before it is moved to ``name`` (``unique``: random)."""
    return f".{name}.{unique or uuid.uuid4().hex[:12]}.part"


def _remove_abandoned_temporaries(destination: ObjectStoragePath) -> None:
    """Remove the temporary files of ``destination`` left by fetches killed outright (best effort)."""
    fs, parent = destination.fs, destination.parent.path.rstrip("/")
    own = re.compile(re.escape(_temporary_name(destination.name, "@")).replace("@", "[0-9a-f]{12}"))
    try:
        found = fs.glob(f"{parent}/{_temporary_name(glob.escape(destination.name), '*')}")
    except Exception:  # e.g. no such folder yet, or listing not allowed
        log.debug("Could not look for abandoned temporary files of %s", storage_uri(destination), exc_info=True)
        return
    for path in found:
        if own.fullmatch(str(path).rsplit("/", 1)[-1]):
            try:
                fs.rm_file(path)
            except Exception:  # another retry removed it first, or removing is not allowed
                log.debug("Could not remove %s", path, exc_info=True)
            else:
                log.warning("Removed %s, left by an earlier try that was killed while copying.", path)


_KIND_DESCRIPTIONS: dict[str, str] = {
    "video": "a video (MP4, QuickTime or WebM)",
    "last_frame": "an image (PNG, JPEG or WebP)",
}
_EBML_SIGNATURE = b"\x1a\x45\xdf\xa3"  # WebM / Matroska
# QuickTime files may start with one of these instead of ``ftyp``.
_QUICKTIME_FIRST_BOXES = frozenset({b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
_HEAD_BYTES = 64


class _ContentCheck:
    """Checks, as the bytes stream past, that a file is what its kind says, and that it is whole.

    A video must be an ISO base media file (MP4, QuickTime) whose top-level boxes add up to exactly
    the bytes received, with an ``ftyp`` box first (or a QuickTime first box) and a ``moov`` box: an
    empty body, an HTML page or a file cut short (a ``Content-Length`` lying low) all fail that.
    WebM / Matroska is recognised by its signature. A last frame must be a PNG (ending with its
    ``IEND`` chunk), a JPEG (ending with its end-of-image marker) or a WebP (whose RIFF size matches).
    Only a few bytes per box are looked at, so the check costs nothing next to the copy.
    """

    def __init__(self, kind: FileKind) -> None:
        self.kind = kind
        self.size = 0
        self.head = bytearray()
        self.tail = b""
        self.boxes = _BoxWalk()

    def feed(self, chunk: bytes | memoryview) -> None:
        if len(self.head) < _HEAD_BYTES:
            self.head += chunk[: _HEAD_BYTES - len(self.head)]
        if self.kind == "video":
            self.boxes.feed(chunk, self.size)
        else:
            self.tail = (self.tail + bytes(chunk[-16:]))[-16:]
        self.size += len(chunk)

    def problem(self) -> str | None:
        head = bytes(self.head)
        if self.size == 0:
            return "the body is empty"
        if head.lstrip()[:1] == b"<":
            return f"it looks like HTML or XML (it starts with {head[:24]!r})"
        if self.kind == "video":
            return self._video_problem(head)
        return self._image_problem(head)

    def _video_problem(self, head: bytes) -> str | None:
        if head.startswith(_EBML_SIGNATURE):
            return None
        boxes = self.boxes
        first = boxes.types[0] if boxes.types else None
        if first != b"ftyp" and first not in _QUICKTIME_FIRST_BOXES:
            return f"it does not start like an MP4 file (no ftyp box; it starts with {head[:16]!r})"
        if boxes.problem:
            return boxes.problem
        if not boxes.open_ended and boxes.next != self.size:
            return (
                f"it is cut short: its boxes need {boxes.next} bytes and {self.size} arrived"
                if boxes.next > self.size
                else f"{self.size - boxes.next} bytes follow its last box"
            )
        if b"moov" not in boxes.types and not boxes.open_ended:
            return "it has no moov box (no movie header), so it cannot be played"
        return None

    def _image_problem(self, head: bytes) -> str | None:
        return image_problem(head, self.tail, self.size)


class _BoxWalk:
    """Follows the top-level boxes of an ISO base media file as its bytes stream past in chunks."""

    def __init__(self) -> None:
        self.next = 0  # offset of the next box header
        self.header = bytearray()  # the part of that header received so far
        self.types: list[bytes] = []
        self.problem: str | None = None
        self.open_ended = False  # the last box has size 0: it runs to the end of the file

    def feed(self, chunk: bytes | memoryview, offset: int) -> None:
        end = offset + len(chunk)
        while self.problem is None and not self.open_ended and self.next + len(self.header) < end:
            start = self.next + len(self.header) - offset
            large = len(self.header) >= 4 and int.from_bytes(self.header[:4], "big") == 1
            needed = (16 if large else 8) - len(self.header)
            self.header += chunk[start : start + needed]
            if len(self.header) < 8:
                return
            size = int.from_bytes(self.header[:4], "big")
            if size == 1 and len(self.header) < 16:
                continue
            self._box_done(size if size != 1 else int.from_bytes(self.header[8:16], "big"))

    def _box_done(self, size: int) -> None:
        box_type = bytes(self.header[4:8])
        header_length = len(self.header)
        self.header.clear()
        if not all(32 <= byte < 127 for byte in box_type):
            self.problem = f"the box at byte {self.next} has no readable type"
            return
        self.types.append(box_type)
        if size == 0:
            self.open_ended = True
        elif size < header_length:
            self.problem = f"the {box_type.decode()} box at byte {self.next} declares an impossible size {size}"
        else:
            self.next += size


class _WritePipeline:
    """Hash and write each chunk in two helper threads while the caller reads the next one.

    ``hashlib`` and file writes release the GIL for large buffers, so reading chunk *n + 1* (the
    caller), hashing chunk *n* and writing it (one helper thread each, in order) run at once. The
    caller reads into buffers it gets from :meth:`buffer`: a few, reused, each handed out again only
    once both helpers are done with it, so no chunk is copied and memory stays at a few chunks.
    """

    #: Buffers in use at most: one being read, one being hashed and written, one in between.
    buffers = 3

    def __init__(self) -> None:
        self._free: list[bytearray] = []
        self._in_hand: deque[tuple[bytearray | None, Future[Any], Future[Any]]] = deque()
        self._made = 0
        self._hasher: ThreadPoolExecutor | None = None
        self._writer: ThreadPoolExecutor | None = None

    def buffer(self, size: int) -> memoryview:
        while not self._free and self._made >= self.buffers and self._in_hand:
            self._finish_oldest()
        block = self._free.pop() if self._free else None
        if block is None or len(block) < size:
            block = bytearray(size)
            self._made += 1
        return memoryview(block)[:size]

    def submit(self, chunk: bytes | memoryview, hash_update: Any, write: Any) -> None:
        if len(chunk) < _BACKGROUND_HASH_MIN:
            self.drain()  # a thread hand-off costs more than a small chunk: in order, right here
            hash_update(chunk)
            write(chunk)
            return
        if self._hasher is None or self._writer is None:
            self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="videogen-sha256")
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="videogen-write")
        owner = chunk.obj if isinstance(chunk, memoryview) and isinstance(chunk.obj, bytearray) else None
        self._in_hand.append((owner, self._hasher.submit(hash_update, chunk), self._writer.submit(write, chunk)))

    def drain(self) -> None:
        while self._in_hand:
            self._finish_oldest()

    def close(self) -> None:
        """Let the chunks in hand finish, ignoring their errors, and stop the helper threads."""
        with contextlib.suppress(Exception):
            self.drain()
        self._in_hand.clear()
        for executor in (self._hasher, self._writer):
            if executor is not None:
                executor.shutdown(wait=True)
        self._hasher = self._writer = None
        self._free.clear()

    def _finish_oldest(self) -> None:
        owner, hashed, written = self._in_hand.popleft()
        try:
            hashed.result()
        finally:
            written.result()
            if owner is not None:
                self._free.append(owner)


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


def _int_header(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def _error_detail(response: requests.Response) -> str:
    """Describe an error answer shortly and safely (S3-style XML code and message, or text)."""
    try:
        raw = response.raw.read(_ERROR_BODY_LIMIT, decode_content=True) if response.raw is not None else b""
    except Exception:
        return ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    tags = dict(_XML_TAG_RE.findall(text))
    if tags:
        return ": ".join(v for v in (tags.get("Code"), tags.get("Message")) if v)
    text = " ".join(text.split())
    return text[:200]


def _b64_to_hex(value: str) -> str | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def _structured_digest(value: str) -> str | None:
    """``sha-256=:<base64>:`` in an RFC 9530 dictionary."""
    match = re.search(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):", value)
    return _b64_to_hex(match.group(1)) if match else None


def _legacy_digest(value: str) -> str | None:
    """``SHA-256=<base64>`` in an RFC 3230 ``Digest`` header."""
    match = re.search(r"(?:^|,)\s*sha-256=([A-Za-z0-9+/=]+)", value, flags=re.IGNORECASE)
    return _b64_to_hex(match.group(1)) if match else None
