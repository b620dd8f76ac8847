"""The file host: a ``GET`` that never leaks the key, what its answers say, and its refusals as typed errors.

A video task's file URLs are pre-signed URLs on a file host (not the API host) that expire some time
after generation (each style's ``url_lifetime_hours``, where its service says). The file host gets no
credentials: a plain session separate from the API hook's is used, and its adapter strips any
``Authorization`` header (e.g. one ``requests`` would take from ``.netrc``), including on redirects.
Only ``http`` and ``https`` URLs are followed. The one exception is a file route of the API itself
(the ``/v1/videos`` content route), which gets the key's headers for the API's own origin only. Every
text a file host sends back is masked (the key, URL queries) before it reaches a message or log line.

ETags are used only as opaque validators, never as hashes: an S3-style ETag is the MD5 of single-part
uploads only, and the simulator's is not a content hash at all.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from airflow_provider_videogen.download._types import _Target
from airflow_provider_videogen.exceptions import VideoDownloadError, VideoFileKeyRefusedError, VideoURLExpiredError
from airflow_provider_videogen.retry import TRANSIENT_STATUSES, parse_retry_after
from airflow_provider_videogen.transport import AddressPolicy, new_session, redact_url

if TYPE_CHECKING:
    from airflow_provider_videogen.credential import Credential

# Statuses with which a pre-signed URL's host says the URL is no longer (or never was) valid.
_REFUSED_STATUSES = frozenset({401, 403, 404, 410})
_ERROR_BODY_LIMIT = 2048
_XML_TAG_RE = re.compile(r"<(Code|Message)>([^<]{0,300})</\1>")
# A URL's query in a text (requests puts the URL, query and all, into its error messages).
_URL_QUERY_RE = re.compile(r"\?[^\s'\")]+")


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


class _RetryableDownloadError(Exception):
    """One attempt broke in a way another attempt may fix."""

    def __init__(self, message: str, *, retry_after: float | None = None, restart: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.restart = restart  # the bytes written so far cannot be resumed: start over


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


class FileHost:
    """Requests to the file host, and its answers checked: one per downloader.

    :param address_policy: which file host addresses may be reached (for the first request and every
        redirect); ``None`` checks nothing.
    :param timeout: ``(connect, read)`` seconds.
    :param credential: the connection's key, for files that need it: its headers are sent to the API's
        origin only, never to another host or across a redirect that leaves it, and the key is masked
        in every message built from the host's answers.
    :param session: a ``requests`` session to use (it must carry no credentials); by default one made
        on first use that sends no ``Authorization`` header and checks every address.
    :param url_lifetime_hours: how long the service keeps file URLs valid, for the message of a refused
        one; ``None``: unknown (the message then names no figure).
    """

    def __init__(
        self,
        *,
        address_policy: AddressPolicy | None,
        timeout: tuple[float, float],
        credential: Credential | None = None,
        session: requests.Session | None = None,
        url_lifetime_hours: float | None = None,
    ) -> None:
        self.address_policy = address_policy
        self.timeout = timeout
        self.credential = credential
        self.url_lifetime_hours = url_lifetime_hours
        self._session = session
        self.response: requests.Response | None = None  # the latest, closed by a cancel to stop a read

    @property
    def session(self) -> requests.Session:
        """The session used for the file host: no credentials, no ``Authorization`` ever sent."""
        if self._session is None:
            self._session = new_session(
                address_policy=self.address_policy,
                strip_authorization=True,
                credentials_origin=self.credential.origin if self.credential else None,
                credential_headers=tuple(self.credential.headers) if self.credential else (),
            )
        return self._session

    def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def clean(self, text: str) -> str:
        """Mask the key and drop every URL query from a text bound for a message or log line."""
        if self.credential is not None:
            text = self.credential.mask(text)
        return _URL_QUERY_RE.sub("?…", text)

    def probe(self, target: _Target) -> _Remote:
        """Read the remote file's size and validators with a one-byte ranged ``GET`` (no body transfer)."""
        with self.get(target, {"Range": "bytes=0-0"}) as response:
            remote = _Remote.from_response(response)
        return remote

    def get(self, target: _Target, headers: dict[str, str]) -> requests.Response:
        """Send a ``GET`` to the file host and return the streamed response once its status is good.

        :raises _RetryableDownloadError: the host is unreachable or answered "not now"
            (``restart`` set on a 416: the range asked for no longer fits the file).
        """
        # Ask for the bytes as stored, so Content-Length counts the file's own bytes.
        headers = {"Accept-Encoding": "identity", **headers}
        if target.authenticated and self.credential is not None:
            # The session's adapter drops them for any other origin, redirects included.
            headers.update(self.credential.headers)
        try:
            response = self.session.get(target.url, headers=headers, stream=True, timeout=self.timeout)
        except requests.exceptions.InvalidSchema as error:
            raise VideoDownloadError(
                f"The file host redirected the {target.what} download away from http(s): {self.clean(str(error))}",
                video_task_id=target.video_task_id,
            ) from None
        except requests.RequestException as error:
            raise _RetryableDownloadError(self.clean(f"{type(error).__name__}: {error}")) from None
        self.response = response
        if response.status_code in (200, 206):
            return response
        try:
            self._raise_for_status(response, target)
        finally:
            response.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for_status(self, response: requests.Response, target: _Target) -> None:
        status = response.status_code
        detail = self.clean(_error_detail(response))
        shown = f"{': ' + detail if detail else ''}"
        refusal = _refusal(target, status, shown, self.url_lifetime_hours)
        if refusal is not None:
            raise refusal
        if status == 416:
            # Our range no longer fits the file: start over rather than guess.
            raise _RetryableDownloadError(f"HTTP 416 for a ranged request{shown}", restart=True)
        if status in TRANSIENT_STATUSES:
            raise _RetryableDownloadError(
                f"HTTP {status}{shown}", retry_after=parse_retry_after(response.headers.get("Retry-After"))
            )
        raise VideoDownloadError(
            f"The file host answered HTTP {status} for the {target.what} of video task {target.video_task_id}{shown}.",
            video_task_id=target.video_task_id,
            http_status=status,
        )


def _refusal(target: _Target, status: int, shown: str, lifetime_hours: float | None) -> VideoDownloadError | None:
    """Return the error for a host that refuses the key or the URL for good, or ``None`` for any other status."""
    if target.authenticated and status in (401, 403):
        # This route is the API's own and takes the key: its refusal is about the key, not the URL's age.
        return VideoFileKeyRefusedError(
            f"The service refused the API key for the {target.what} of video task {target.video_task_id} "
            f"at {redact_url(target.url)} (HTTP {status}{shown}). This file route "
            "needs the connection's API key, and the key is wrong, revoked or lacks access to the file "
            "(the URL has not expired). Check the API key of the connection, then retry the task.",
            video_task_id=target.video_task_id,
            http_status=status,
        )
    if status in _REFUSED_STATUSES:
        # A wrong figure would mislead more than none: a style whose service names none gets no number.
        unit = "hour" if lifetime_hours == 1 else "hours"
        within = f"{lifetime_hours:g} {unit} of generation" if lifetime_hours else "the service's own lifetime for them"
        return VideoURLExpiredError(
            f"The file host refused the {target.what} URL of video task {target.video_task_id} "
            f"(HTTP {status}{shown}): the URL has expired or was revoked. "
            f"Generated files must be fetched within {within}; "
            "generate the video again.",
            video_task_id=target.video_task_id,
            http_status=status,
        )
    return None


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
