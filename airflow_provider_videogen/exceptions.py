"""Typed errors of the provider; none of them ever carries the API key."""

from __future__ import annotations

from airflow.exceptions import AirflowException

from airflow_provider_videogen._compat import AirflowFailException


class VideoGenError(AirflowException):
    """Base of every error raised by this provider.

    :param message: what went wrong and what to do about it.
    :param video_task_id: the video task concerned, if any.
    :param http_status: the HTTP status the service answered, if any.
    :param api_code: the API's own error code, if it sent one.
    :param api_message: the API's own error message, if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        video_task_id: str | None = None,
        http_status: int | None = None,
        api_code: str | None = None,
        api_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.video_task_id = video_task_id
        self.http_status = http_status
        self.api_code = api_code
        self.api_message = api_message


class VideoGenConfigurationError(VideoGenError):
    """The connection or an argument is set up wrongly; nothing was sent. Fix the setting and retry."""


class VideoGenAPIError(VideoGenError):
    """The service refused a request (4xx other than the cases below): retrying the same call will not help."""


class VideoGenAuthError(VideoGenAPIError):
    """401/403: the API key is wrong, belongs to another data center, or lacks access."""


class VideoTaskNotFoundError(VideoGenAPIError):
    """The video task does not exist (404, or the gateway's 400 ``task_not_exist``)."""

    @property
    def said_by_the_api(self) -> bool:
        """Whether the API itself answered it (an error body its style reads, or a not-found status).

        ``False`` for a 404 with no API error in it: an nginx or ingress page, a bare ``404 page not
        found``, which say the path is not served there, not that the task is gone.
        """
        return bool(self.api_code or self.api_message)


class VideoGenTransientError(VideoGenError):
    """A fault that may pass: connection error, timeout, 429, 5xx, or an empty or non-JSON answer.

    Raised once the retry budget is spent; ``retry_after`` holds the service's ``Retry-After``
    in seconds when it sent one.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, empty_body: bool = False, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.empty_body = empty_body


class VideoGenRequestNotSentError(VideoGenTransientError):
    """A transient fault that surely happened before the service received the request."""


class VideoTaskMayExistError(VideoGenTransientError):
    """The create call reached the service, but its answer was lost or unreadable: the video task may exist.

    A timeout or a reset after the request was sent, an answer cut short or too large. Submitting
    again may pay for a second generation.
    """


class VideoTaskIdMissingError(VideoGenAPIError):
    """The service accepted a create call but its answer holds no task id: the video task may exist."""


class VideoGenerationOutcomeUnknownError(VideoGenError, AirflowFailException):
    """The create call may have made a generation whose id never arrived; the task ends without retrying.

    A retry could only submit (and pay for) another generation. The message says how to find the
    first one in the service's task list and wait for it, or to clear the task to submit again.
    """


class VideoGenerationOverBudgetError(VideoGenError, AirflowFailException):
    """A generation's estimated cost is above ``max_cost``, or cannot be estimated; nothing was submitted.

    Not retried: a retry would estimate the same. The message names the estimate, the cap and how
    the estimate was computed (or why it could not be).
    """


class VideoGenNotSupportedError(VideoGenError):
    """The connection's API style has no such operation (e.g. cancelling on a video-generations gateway)."""


class VideoGenerationFailedError(VideoGenError):
    """A generation ended failed, cancelled or expired; retrying the operator submits a new one."""


class VideoGenerationNotSavedError(VideoGenError, AirflowFailException):
    """A generation was submitted but its id could not be saved for retries; the task ends without retrying.

    The message names the id: the generation goes on, and a ``VideoTaskSensor`` can wait for it.
    """


class VideoTaskNotReadyError(VideoGenError):
    """The video task has not finished yet, so it has no video to fetch (a later retry may succeed)."""


class VideoTaskFailedError(VideoGenError, AirflowFailException):
    """The video task ended without a video (failed, cancelled or expired); retrying cannot help."""


class VideoDownloadError(VideoGenError):
    """The file could not be downloaded completely (after retries) or could not be stored."""


class VideoDownloadCancelledError(VideoDownloadError):
    """The download was cancelled (the task was killed); the temporary file was removed."""


class VideoIntegrityError(VideoDownloadError):
    """The downloaded bytes do not match the checksum the file host advertised."""


class VideoContentError(VideoDownloadError):
    """What arrived is not a whole file of its kind (an empty body, an HTML page, a file cut short); nothing landed."""


class VideoStorageError(VideoDownloadError):
    """The destination could not be written (disk full, read-only, no permission); nothing was left there."""


class VideoNotAvailableError(VideoDownloadError, AirflowFailException):
    """The task succeeded but the service gave no URL for the file asked for; retrying cannot change that."""


class VideoURLExpiredError(VideoDownloadError, AirflowFailException):
    """The file host refused the pre-signed URL (403/404/410): it expired or was revoked."""


class VideoFileKeyRefusedError(VideoDownloadError, AirflowFailException):
    """A file route that needs the API key (``/v1/videos/{id}/content``, Gemini files) refused it (401/403).

    The key is wrong, revoked, or lacks access to the file: the URL did not expire. Fix the key of
    the connection, then retry the task.
    """


class VideoDestinationExistsError(VideoDownloadError, AirflowFailException):
    """The destination holds a different (or unverifiable) file and ``overwrite`` is not set."""


class VideoDestinationError(VideoDownloadError, AirflowFailException):
    """The destination is no place a file can land: relative, malformed, or of no installed filesystem.

    Nothing was downloaded; a retry with the same destination cannot help. The message names the
    destination and the form it should take.
    """


class VideoFileHostRefusedError(VideoDownloadError, AirflowFailException):
    """A file URL (or one of its redirects) leads to a loopback, private or link-local address.

    Nothing was sent there. Allow such hosts with the connection extra ``allow_private_file_hosts``.
    """
