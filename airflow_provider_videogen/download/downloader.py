"""``VideoDownloader``: one file copied from a pre-signed URL into object storage, streamed, verified and atomic.

It coordinates the package's parts: the destination rules (:mod:`.destination`), the file host
(:mod:`.remote`), an existing copy (:mod:`.existing`), the copy across attempts (:mod:`.transfer`)
into a staged file (:mod:`.staging`) through the write pipeline (:mod:`.pipeline`), the content check
(:mod:`.content`) and the integrity record (:mod:`.record`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

from airflow_provider_videogen.download._types import FileKind, StoredFile, _Target, cancelled_error, log
from airflow_provider_videogen.download.content import _KIND_DESCRIPTIONS
from airflow_provider_videogen.download.destination import check_destination, check_file_url, storage_uri
from airflow_provider_videogen.download.existing import landed_copy
from airflow_provider_videogen.download.record import _Record
from airflow_provider_videogen.download.remote import FileHost, _Remote
from airflow_provider_videogen.download.staging import (
    _MIN_UPLOAD_BLOCK,
    _landed_file,
    _publish_with_record,
    _StagedFile,
    _storage_errors,
)
from airflow_provider_videogen.download.transfer import Transfer, retrying
from airflow_provider_videogen.exceptions import (
    VideoContentError,
    VideoDownloadError,
    VideoIntegrityError,
)
from airflow_provider_videogen.retry import RetryPolicy
from airflow_provider_videogen.transport import AddressPolicy

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_videogen.credential import Credential
    from airflow_provider_videogen.settings import VideoGenConnectionSettings

DEFAULT_CHUNK_SIZE = 512 * 1024
"""Bytes read from the network and written per step.

Large enough to keep the Python work per chunk small (~2,000 steps per GiB), small enough for a chunk
to stay in a core's cache between the socket read, the hash and the file write: copying 8 MiB chunks
into the page cache took ~1.2 s of system time per GiB against ~0.3 s for 512 KiB ones (1 MiB ones
sometimes cost as much as 8 MiB on a busy machine), which made a large download CPU-bound.
"""


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
    :param credential: the connection's key (its :class:`~airflow_provider_videogen.credential.Credential`):
        masked in every message and log line this downloader writes, should a file host echo it, and
        sent for files that need it (the ``/v1/videos`` content route, Gemini files; :meth:`fetch`
        ``authenticated=True``) to the API's own origin only, never to another host or across a
        redirect that leaves it.
    :param url_lifetime_hours: how long the service keeps file URLs valid (the style's
        ``url_lifetime_hours``), named when a file host refuses one; ``None``: unknown.
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
        credential: Credential | None = None,
        url_lifetime_hours: float | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.chunk_size = chunk_size
        self.retry_policy = retry_policy or RetryPolicy(max_seconds=300.0)
        self.timeout = (connect_timeout, read_timeout)
        self.address_policy = address_policy
        self.host = FileHost(
            address_policy=address_policy,
            timeout=self.timeout,
            credential=credential,
            session=session,
            url_lifetime_hours=url_lifetime_hours,
        )
        self._cancelled = threading.Event()
        self._staged: _StagedFile | None = None

    @property
    def session(self) -> requests.Session:
        """The session used for the file host: no credentials, no ``Authorization`` ever sent."""
        return self.host.session

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
            credential=settings.credential,
            url_lifetime_hours=settings.style.url_lifetime_hours,
        )

    def close(self) -> None:
        """Close the HTTP session."""
        self.host.close()

    def cancel(self) -> None:
        """Stop the copy in progress and remove its temporary file (safe to call from a signal handler)."""
        self._cancelled.set()
        response, staged = self.host.response, self._staged
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
        sweep: bool = True,
    ) -> StoredFile:
        """Copy the file at ``url`` to ``destination``; return what is stored there.

        :param url: the pre-signed ``http(s)`` URL of the file.
        :param authenticated: send the downloader's ``credentials`` (only to their origin).
        :param destination: the file's path (not a folder).
        :param video_task_id: the video task the file belongs to (recorded, and used in messages).
        :param kind: ``video`` or ``last_frame``, recorded so one record is never taken for another.
        :param overwrite: replace a destination that holds a different file instead of failing.
        :param sweep: first remove the temporary files a killed earlier try left for ``destination`` (one listing
            of its folder); off where the caller swept the folder once for many files
            (:func:`~.staging.remove_abandoned_temporaries_in`).
        :raises VideoURLExpiredError: the file host refused the URL.
        :raises VideoFileKeyRefusedError: a file route that needs the API key refused it (401/403).
        :raises VideoDestinationExistsError: the destination holds another file and ``overwrite`` is off.
        :raises VideoDestinationError: the destination is relative or malformed (see :func:`check_destination`).
        :raises VideoDownloadError: the download could not be completed within the retry policy.
        """
        target = self._target(url, destination, video_task_id, kind, authenticated)
        existing = landed_copy(
            target, overwrite=overwrite, probe=lambda: self._probe(target), chunk_size=self.chunk_size, sweep=sweep
        )
        if existing is not None:
            return existing
        return self._download(target)

    def _target(
        self, url: str, destination: ObjectStoragePath, video_task_id: str, kind: FileKind, authenticated: bool
    ) -> _Target:
        """Check the URL and the destination before anything is touched; return the file to copy."""
        check_file_url(url, video_task_id=video_task_id)
        check_destination(storage_uri(destination))
        if authenticated and self.host.credential is None:
            raise VideoDownloadError("This file needs the API key, but the downloader was given none.")
        if destination.fs.isdir(destination.path):
            raise VideoDownloadError(
                f"The destination {storage_uri(destination)} is a folder: end the destination with '/' to "
                "write into it, or name a file.",
                video_task_id=video_task_id,
            )
        return _Target.named(url, destination, video_task_id, kind, authenticated=authenticated)

    def _probe(self, target: _Target) -> _Remote:
        """Read the remote file's size and validators, retried as the policy allows."""
        return retrying(lambda: self.host.probe(target), target, policy=self.retry_policy, cancelled=self._cancelled)

    def _download(self, target: _Target) -> StoredFile:
        """Copy the file into a staged file, verify it, write its record and move it into place."""
        staged = _StagedFile(target.destination, block_size=max(self.chunk_size, _MIN_UPLOAD_BLOCK), kind=target.kind)
        self._staged = staged
        try:
            with _storage_errors(target):
                staged.open()
            remote = Transfer(
                self.host,
                target,
                staged,
                chunk_size=self.chunk_size,
                policy=self.retry_policy,
                cancelled=self._cancelled,
                progress_interval=self.progress_log_interval,
            ).run()
            size, digest = staged.written, staged.hexdigest()
            _verify(target, staged, remote, digest, clean=self.host.clean)
            with _storage_errors(target):
                staged.close()
            if self._cancelled.is_set():
                raise cancelled_error(target)
            with _storage_errors(target):
                _publish_with_record(staged, _Record.build(target, remote, size, digest))
        except BaseException:
            staged.discard()
            raise
        finally:
            self._staged = None
        return _landed_file(target, size, digest)


def _verify(target: _Target, staged: _StagedFile, remote: _Remote, digest: str, *, clean: Callable[[str], str]) -> None:
    """Raise unless the copy has the host's SHA-256 (when it advertises one) and is a whole file of its kind."""
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
            f"{urlsplit(target.url).hostname} is not {kind}: {clean(problem)}. "
            "Nothing was stored. The file host may have answered an error or login page, or cut the file "
            "short; the task may be retried.",
            video_task_id=target.video_task_id,
        )
