"""What every API style says about itself.

The task id checks and the field readers its answers are parsed with live in
:mod:`~airflow_provider_videogen.styles.task_ids` and :mod:`~airflow_provider_videogen.styles.fields`;
their names stay importable from here. How a style reads its service's error answers is in
:mod:`~airflow_provider_videogen.styles.error_answers`, what it says of the calls that read many
tasks at once in :mod:`~airflow_provider_videogen.styles.list_calls`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.credential import Credential
from airflow_provider_videogen.styles.error_answers import ErrorAnswers
from airflow_provider_videogen.styles.fields import (
    epoch_seconds,
    error_in_text,
    flag,
    integer,
    mapping,
    number,
    one_image,
    percent,
    refuse_fields,
    text,
    whole_seconds,
)
from airflow_provider_videogen.styles.list_calls import ListCalls
from airflow_provider_videogen.styles.task_ids import (
    MAX_VIDEO_TASK_ID_LENGTH,
    NIL_UUID,
    check_uuid_task_id,
    check_video_task_id,
)
from airflow_provider_videogen.video_task import VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.exceptions import VideoGenError
    from airflow_provider_videogen.generation_request import Upload, VideoGenerationRequest
    from airflow_provider_videogen.video_task import VideoTask

__all__ = [
    "MAX_VIDEO_TASK_ID_LENGTH",
    "NIL_UUID",
    "RONGCLOUD_DATA_CENTERS",
    "ApiStyle",
    "ConnectionOption",
    "DataCenter",
    "FileSource",
    "check_uuid_task_id",
    "check_video_task_id",
    "epoch_seconds",
    "error_in_text",
    "flag",
    "integer",
    "mapping",
    "number",
    "one_image",
    "percent",
    "refuse_fields",
    "text",
    "whole_seconds",
]


@dataclass(frozen=True)
class DataCenter:
    """Where a style's service answers when the connection names no host.

    :param name: the connection's ``data_center`` value.
    :param label: what the connection form's dropdown shows.
    :param base_url: scheme and host of the API there.
    """

    name: str
    label: str
    base_url: str


#: RongCloud's data centers: the contents-generations service (and the default of gateway styles).
RONGCLOUD_DATA_CENTERS = (
    DataCenter("beijing", "Beijing (ai.rong-api.com)", "https://ai.rong-api.com"),
    DataCenter("north_america", "North America (ai.us-light-api.com)", "https://ai.us-light-api.com"),
)


@dataclass(frozen=True)
class ConnectionOption:
    """A connection extra that one style reads (shown in the connection form, built from the style).

    :param name: the extra's name.
    :param label: what the connection form shows.
    :param description: one line for the connection form.
    :param default: the value when the connection sets none.
    :param pattern: a regular expression the value must match in full.
    """

    name: str
    label: str
    description: str
    default: str
    pattern: str = ".+"


@dataclass(frozen=True)
class FileSource:
    """Where a task's file is fetched from.

    :param url: the file's URL.
    :param authenticated: send the connection's key (to the connection's own origin only); ``False``
        for pre-signed URLs, which must never get it.
    :param conn_id: for a file the service wrote into object storage (``s3://...``): the storage
        connection that reads it; the file is then copied, not downloaded.
    :param inline_body: for a file the service returns inside an API answer (Vertex's inline videos):
        the JSON body POSTed to ``url`` (an API route) to get that answer again; ``None``: a file URL.
    :param inline_index: which base64 member of that answer (the style's ``elided_answer_members``)
        holds the file, counted from 0.
    """

    url: str
    authenticated: bool = False
    conn_id: str | None = None
    inline_body: Mapping[str, Any] | None = None
    inline_index: int = 0


class ApiStyle(ErrorAnswers, ListCalls):
    """One API style: its routes, its request bodies, how its answers and errors read, what it can do.

    The hook, the trigger and the operators ask the connection's style, never which style it is. A
    new style is a subclass in a module of its own, listed in the registry
    (:data:`airflow_provider_videogen.styles.STYLES`). How its error answers read, and what it says of
    the calls that read many tasks at once (a batch query, the list of recent generations), it inherits
    from :class:`~airflow_provider_videogen.styles.error_answers.ErrorAnswers` and
    :class:`~airflow_provider_videogen.styles.list_calls.ListCalls`.
    """

    #: The connection's ``api_style`` value.
    name: ClassVar[str]
    #: How the connection form shows it.
    label: ClassVar[str]
    #: One line for the connection form: which services speak it.
    description: ClassVar[str]
    #: The ``path_prefix`` used when the connection sets none.
    default_path_prefix: ClassVar[str]
    #: The route of the collection of tasks (create, list), after the prefix.
    tasks_route: ClassVar[str]
    #: Whether a queued task can be cancelled (and so ``cancel_task`` works).
    can_cancel: ClassVar[bool] = False
    #: Said when cancelling is asked of a style that cannot.
    no_cancel_reason: ClassVar[str] = "it has no cancel call"
    #: How the style's answers spell each status, in lower case (answers are compared in lower case).
    #: Any other spelling reads as unknown, which is not final: a waiting task keeps waiting.
    statuses: ClassVar[Mapping[str, VideoTaskStatus]] = {}
    #: Where the service is when the connection names no host (the first is the default).
    data_centers: ClassVar[tuple[DataCenter, ...]] = RONGCLOUD_DATA_CENTERS
    #: Seconds between two polls of a waiting task when the caller sets none: the service's own
    #: advice, or about as often as its answer can change.
    default_poll_interval: ClassVar[float] = 10.0
    #: Hours the service keeps a finished task's file URLs valid, as it documents them; ``None`` where
    #: it gives no one figure (an expired URL's message then says "the service's own lifetime").
    url_lifetime_hours: ClassVar[float | None] = None
    #: Most generations one ``GenerateVideosOperator`` keeps queued or running at once, where the service
    #: publishes a per-account limit (below it: other tasks share the account); ``None``: a conservative default.
    max_in_flight: ClassVar[int | None] = None
    #: Most create calls a minute one ``GenerateVideosOperator`` sends, where the service publishes a rate
    #: limit; ``None``: a conservative default.
    max_creates_per_minute: ClassVar[int | None] = None
    #: The statuses in which a task may be cancelled (never a final one: a cancel call that deletes
    #: a finished task must not reach it).
    cancellable_statuses: ClassVar[frozenset[VideoTaskStatus]] = frozenset({VideoTaskStatus.QUEUED})
    #: The HTTP method of the cancel call (on :meth:`cancel_route`).
    cancel_method: ClassVar[str] = "DELETE"
    #: The id a connection test looks up (a task that does not exist, in this style's id format).
    probe_task_id: ClassVar[str] = "airflow-connection-test"
    #: Connection extras this style reads (see :meth:`with_options`).
    options: ClassVar[tuple[ConnectionOption, ...]] = ()
    #: Whether the connection holds the API key; ``False``: the style borrows a cloud connection's
    #: credentials (its :meth:`credential` says how) and a key in the connection is refused.
    uses_api_key: ClassVar[bool] = True
    #: Whether the service makes a repeated create (same idempotency token, same body) answer the
    #: same task without billing it again: then a create is retried like any call (see ``create_body``).
    idempotent_create: ClassVar[bool] = False
    #: The HTTP method of a task's query; a ``POST`` sends :meth:`query_body` (Vertex's ``fetchPredictOperation``).
    query_method: ClassVar[str] = "GET"
    #: Names of JSON string members whose values are dropped from a query's answer while it is read,
    #: before the answer cap counts it: a video returned inline (Vertex), landed by streaming it again.
    elided_answer_members: ClassVar[tuple[str, ...]] = ()

    def with_options(self, values: Mapping[str, str]) -> ApiStyle:
        """Return the style as one connection configures it (``values``: its :attr:`options`, checked)."""
        return self

    def credential(self, api_key: str, base_url: str) -> Credential:
        """Make the connection's credential: the one value that carries the key (see :meth:`auth_headers`).

        :param api_key: the connection's API key.
        :param base_url: the API's base URL: the key's headers go to its origin only.
        """
        return Credential(api_key, base_url, self.auth_headers(api_key), self.request_headers)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Return the headers that carry the connection's API key (``Authorization: Bearer`` by default).

        The downloader sends them only to the connection's own origin and strips every one of these
        header names from a request to any other host.
        """
        return {"Authorization": f"Bearer {api_key}"}

    def request_headers(self, api_key: str, action: str) -> dict[str, str]:
        """Return all the headers of one API call (``action``: ``create``, ``query``, ``cancel``, ``list``...)."""
        return {**self.auth_headers(api_key), "Accept": "application/json"}

    def task_route(self, video_task_id: str) -> str:
        """Return the route of one task, after the prefix; the id is checked and stays one path segment."""
        return f"{self.tasks_route}/{quote(self.check_task_id(video_task_id), safe='')}"

    def query_body(self, video_task_id: str) -> Any:
        """Return the JSON body of a task's query (``None``: none, as for a ``GET``)."""
        return None

    def file_stem(self, video_task_id: str) -> str:
        """Return the name a task's files get in a folder destination (``<stem>.mp4``): the id by default."""
        return video_task_id

    def cancel_route(self, video_task_id: str) -> str:
        """Return the route of the cancel call of one task, after the prefix (the task's own by default)."""
        return self.task_route(video_task_id)

    def create_route(self, request: VideoGenerationRequest) -> str:
        """Return the route of the create call for ``request``, after the prefix (the tasks route by default)."""
        return self.tasks_route

    def create_headers(self, request: VideoGenerationRequest) -> dict[str, str]:
        """Return the headers the create call of ``request`` adds to the style's own (none by default)."""
        return {}

    def check_task_id(self, video_task_id: Any) -> str:
        """Return the id if this style could have made it and it is safe in a URL path, else raise."""
        return check_video_task_id(video_task_id)

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """Return the create call's JSON body for ``request``; raise a clear error for fields this style lacks."""
        raise NotImplementedError

    def create_uploads(self, request: VideoGenerationRequest) -> list[Upload]:
        """Return the files the create call uploads (then it is multipart/form-data, not JSON).

        By default none: a style that takes no uploads refuses ``image_file``.
        """
        if request.image_file is not None:
            raise refused(
                f"{self.name} takes input images as URLs or data: URIs in image_urls, not as a file upload "
                "(image_file)."
            )
        return []

    def created_task_id(self, answer: Any) -> str | None:
        """Read the new task's id from the create call's answer (``None`` if it holds none)."""
        data = answer.get("data") if isinstance(answer, Mapping) and isinstance(answer.get("data"), Mapping) else answer
        if not isinstance(data, Mapping):
            return None
        found = data.get("task_id") or data.get("id")
        return found if isinstance(found, str) and found else None

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Turn a query answer into a :class:`~airflow_provider_videogen.video_task.VideoTask`.

        :raises ValueError: the answer does not describe a task.
        """
        raise NotImplementedError

    def result_route(self, task: VideoTask) -> str | None:
        """Return the route (after the prefix) of a second read that says how ``task`` ended, or ``None``.

        For a style whose status answer cannot say it (fal: ``COMPLETED`` may be a success or a
        failure, only the result tells); the query then reads it at once. ``None`` by default.
        """
        return None

    def read_result(self, task: VideoTask, payload: Any) -> VideoTask:
        """Return ``task`` as the result read of :meth:`result_route` says it ended (a 2xx answer)."""
        raise NotImplementedError

    def result_error(self, task: VideoTask, error: VideoGenError, headers: Mapping[str, str]) -> VideoTask:
        """Return ``task`` as an error answer of the result read says it ended, or raise ``error`` (by default)."""
        raise error

    def poll_hint(self, headers: Mapping[str, str]) -> float | None:
        """Seconds the service asks a poller to wait before the next poll, if it says (none by default)."""
        return None

    def file_source(self, task: VideoTask, kind: str, task_url: str) -> FileSource | None:
        """Where the ``video`` or ``last_frame`` of a succeeded task is; ``None`` if the task has none.

        By default: the pre-signed URLs the task carries (``video_url``, ``last_frame_url``).
        """
        url = task.video_url if kind == "video" else task.last_frame_url
        return FileSource(url) if url else None

    def console_url(self, base_url: str, video_task_id: str) -> str | None:
        """Return the service's web console page for a task (an extra link of the task), or ``None`` if it has none.

        A plain page: never the API key or a signed query. None by default.
        """
        return None

    def is_task_answer(self, decoded: Any) -> bool:
        """Whether a 2xx answer describes a task (then an ``error`` in it is the task's, not the call's)."""
        return isinstance(decoded, Mapping) and any(k in decoded for k in ("status", "id", "task_id"))

    def __repr__(self) -> str:
        return f"<API style {self.name}>"
