"""One copy across broken attempts: each attempt resumes with ``Range`` where that is safe, else restarts.

The byte count is checked against ``Content-Length``. A short or broken download is retried: resumed
with ``Range`` (guarded by ``If-Range`` with the file's ETag or ``Last-Modified``, so two different
files are never spliced) where the host supports it, else restarted from the first byte. A break loses
the chunk being read, so after a break that brought nothing new, reads get smaller. Attempts that
bring new bytes are not failures: the retry policy counts only attempts without progress.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from airflow_provider_videogen.download._types import _Target, cancelled_error, log
from airflow_provider_videogen.download.progress import ProgressLog
from airflow_provider_videogen.download.remote import FileHost, _int_header, _Remote, _RetryableDownloadError
from airflow_provider_videogen.download.staging import _StagedFile, _storage_errors
from airflow_provider_videogen.exceptions import VideoDownloadCancelledError, VideoDownloadError
from airflow_provider_videogen.retry import RetryPolicy
from airflow_provider_videogen.transport import redact_url

T = TypeVar("T")

# What a broken stream raises: through requests, or straight from the socket (see Transfer._stream).
_STREAM_ERRORS = (requests.RequestException, OSError, http.client.HTTPException)
# A break loses the chunk being read; after a break without progress, reads shrink down to this.
_MIN_CHUNK_SIZE = 64 * 1024


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


class _RetryRules:
    """When the next attempt comes (tenacity's stop, wait and before-sleep) for one copy."""

    def __init__(self, target: _Target, policy: RetryPolicy, cancelled: threading.Event, progress: _Progress) -> None:
        self.target, self.policy, self.cancelled, self.progress = target, policy, cancelled, progress

    def stop(self, state: RetryCallState) -> bool:
        if self.cancelled.is_set():
            return True
        streak = self.progress.barren_attempts
        waited = time.monotonic() - self.progress.last_progress_at
        return streak >= self.policy.max_attempts or waited + self.policy.backoff(streak) > self.policy.max_seconds

    def wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return self.policy.wait_after(self.progress.barren_attempts, getattr(error, "retry_after", None))

    def sleep(self, seconds: float) -> None:
        # Wake up at once when cancelled rather than finishing the backoff.
        self.cancelled.wait(seconds)

    def before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "Downloading the %s of video task %s was interrupted (%s); retrying in %.1f s.",
            self.target.what,
            self.target.video_task_id,
            error,
            state.upcoming_sleep,
        )


def retrying(
    call: Callable[[], T],
    target: _Target,
    *,
    policy: RetryPolicy,
    cancelled: threading.Event,
    progress: _Progress | None = None,
) -> T:
    """Run ``call`` until it returns, retrying broken attempts as the policy allows.

    :param cancelled: set by a cancel: no further attempt, and a backoff in progress ends at once.
    :param progress: how far the copy got, shared with ``call``; a fresh one for calls that copy nothing.
    :raises VideoDownloadError: the policy gave up.
    """
    progress = _Progress() if progress is None else progress
    rules = _RetryRules(target, policy, cancelled, progress)
    retry = Retrying(
        stop=rules.stop,
        wait=rules.wait,
        retry=retry_if_exception_type(_RetryableDownloadError),
        before_sleep=rules.before_sleep,
        sleep=rules.sleep,
        reraise=True,
    )

    def attempt() -> T:
        progress.begin_attempt()
        return call()

    try:
        return retry(attempt)
    except _RetryableDownloadError as error:
        if cancelled.is_set():
            raise cancelled_error(target) from None
        raise VideoDownloadError(
            f"Could not download the complete {target.what} of video task {target.video_task_id} from "
            f"{redact_url(target.url)}: {error}. Gave up after {progress.attempts} attempts, the last "
            f"{progress.barren_attempts} without progress; the Airflow task may be retried.",
            video_task_id=target.video_task_id,
        ) from None


class Transfer:
    """One file copied from the file host into its staged file, across as many attempts as it takes.

    :param host: the file host.
    :param target: the file.
    :param staged: the temporary file the bytes go to.
    :param chunk_size: bytes read and written per step.
    :param policy: how broken attempts are retried (see :func:`retrying`).
    :param cancelled: set by a cancel; the copy then stops with ``VideoDownloadCancelledError``.
    :param progress_interval: seconds between two progress lines.
    """

    def __init__(
        self,
        host: FileHost,
        target: _Target,
        staged: _StagedFile,
        *,
        chunk_size: int,
        policy: RetryPolicy,
        cancelled: threading.Event,
        progress_interval: float,
    ) -> None:
        self.host, self.target, self.staged = host, target, staged
        self.chunk_size, self.policy, self.cancelled = chunk_size, policy, cancelled
        self.progress_interval = progress_interval
        self.progress = _Progress()
        self._asked_from = "the start"  # the range the latest request asked for, for messages

    def run(self) -> _Remote:
        """Copy the whole file into the staged file; return what the host said about it."""
        return retrying(
            self._attempt, self.target, policy=self.policy, cancelled=self.cancelled, progress=self.progress
        )

    def _attempt(self) -> _Remote:
        """Stream the rest of the file into the staged file (resuming or restarting as the host allows)."""
        staged = self.staged
        with self._request() as response:
            answer = self._answer(response)
            # A content coding (despite Accept-Encoding: identity) makes Content-Length count encoded
            # bytes and ranges meaningless: check the bytes off the wire, and never resume.
            encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
            self.progress.resumable = not encoded
            body_length = _int_header(response.headers.get("Content-Length"))
            first = staged.written
            self._copy_body(response, answer, encoded)
            received = response.raw.tell() if encoded else staged.written - first
        if body_length is not None and received != body_length:
            raise _RetryableDownloadError(f"the body ended after {received} of {body_length} bytes")
        if answer.total is not None and not encoded and staged.written != answer.total:
            staged.restart()
            raise _RetryableDownloadError(f"got {staged.written} bytes of a {answer.total}-byte file")
        if answer.total is None and body_length is None:
            log.warning(
                "The file host sent no Content-Length for the %s of video task %s: its size cannot be checked.",
                self.target.what,
                self.target.video_task_id,
            )
        return answer

    def _request(self) -> requests.Response:
        """Ask for the rest of the file where that is safe, else for all of it (throwing away what was written)."""
        headers: dict[str, str] = {}
        remote, staged = self.progress.remote, self.staged
        if staged.written:
            validator = remote.validator if remote is not None and self.progress.resumable else None
            if validator:
                headers["Range"] = f"bytes={staged.written}-"
                headers["If-Range"] = validator
            else:
                # Without a validator a resumed range might come from a changed file: start over.
                log.info("The %s cannot be resumed safely; restarting from the first byte.", self.target.what)
                staged.restart()
        self._asked_from = headers.get("Range", "the start")
        try:
            return self.host.get(self.target, headers)
        except _RetryableDownloadError as error:
            if error.restart and staged.written:
                staged.restart()
            raise

    def _answer(self, response: requests.Response) -> _Remote:
        """Return what the host says about the file; restart the staged file unless the answer continues it."""
        staged, progress, remote = self.staged, self.progress, self.progress.remote
        try:
            answer = _Remote.from_response(response)
        except _RetryableDownloadError:
            progress.resumable = False  # a host that garbles ranges gets plain requests from now on
            raise
        if response.status_code != 206:
            if staged.written:
                log.info("The file host sent the whole %s instead of the rest; restarting.", self.target.what)
                staged.restart()
            progress.remote = answer
            return answer
        if remote is None or answer.range_start != staged.written or answer.total != remote.total:
            staged.restart()
            raise _RetryableDownloadError(
                f"the file host answered {response.headers.get('Content-Range')!r} to a request "
                f"for the bytes from {self._asked_from}"
            )
        if not answer.same_file_as(remote):
            # A host that ignores If-Range answers a changed file's bytes: never join two files.
            staged.restart()
            progress.remote = None
            raise _RetryableDownloadError(
                "the file changed at the host since the download began (its ETag or Last-Modified "
                "differs); starting over"
            )
        return remote

    def _copy_body(self, response: requests.Response, answer: _Remote, encoded: bool) -> None:
        """Stream the body into the staged file; a break becomes a retryable error, a cancel the cancelled one."""
        staged, progress, target = self.staged, self.progress, self.target
        first = staged.written
        report = ProgressLog(target.what, self.progress_interval, start=first)
        report.set_size(answer.total)
        try:
            self._stream(response, progress.chunk_size or self.chunk_size, encoded, report)
        except _STREAM_ERRORS as error:
            if self.cancelled.is_set():
                raise cancelled_error(target) from None
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
            if self.cancelled.is_set():
                raise cancelled_error(target) from None
            raise
        finally:
            with _storage_errors(target):
                staged.drain()  # every byte counted is written (or its storage error raised) by now
            progress.advance(staged.written)
        if self.cancelled.is_set():
            raise cancelled_error(target)

    def _stream(self, response: requests.Response, chunk_size: int, encoded: bool, report: ProgressLog) -> None:
        """Copy the body into the staged file, chunk by chunk, reporting progress."""
        staged, target = self.staged, self.target
        # Straight from the HTTP response into the staged file's buffers: urllib3's read(amt) would copy
        # every chunk two or three times. Its content decoding is not needed for an identity body.
        readinto = None if encoded else getattr(getattr(response.raw, "_fp", None), "readinto", None)
        if readinto is None:
            for chunk in response.iter_content(chunk_size):
                if self.cancelled.is_set():
                    raise cancelled_error(target)
                with _storage_errors(target):
                    staged.write(chunk)
                report.absolute_update(staged.written)
            return
        while not self.cancelled.is_set():
            with _storage_errors(target):
                block = staged.buffer(chunk_size)
            received = readinto(block)
            if not received:
                return
            with _storage_errors(target):
                staged.write(block[:received])
            report.absolute_update(staged.written)
        raise cancelled_error(target)
