"""The request value of the client core: one call of an API as a frozen value, and what its answer returns.

:class:`ApiRequest` says what goes out, to which connection, and how the answer is read and retried;
:class:`Answer` and :class:`PollAnswer` carry the result back with the service's poll hint. The
client (:mod:`~airflow_provider_videogen.client`) sends them; the calls that build them for a
create or a list walk are in :mod:`~airflow_provider_videogen.generation_calls`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_videogen.answers import read_task_payload

if TYPE_CHECKING:
    from airflow_provider_videogen.exceptions import VideoGenError
    from airflow_provider_videogen.generation_request import Upload
    from airflow_provider_videogen.retry import RetryPolicy
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

__all__ = ["Answer", "ApiRequest", "PollAnswer", "query"]


@dataclass(frozen=True)
class ApiRequest:
    """One call of the API as a value: what is sent, to which connection, and how its answer is read and retried.

    :param method: the HTTP method.
    :param url: the whole URL (built by the connection's settings from the style's route).
    :param action: what the call does, in the words of a message (``create``, ``query``, ``cancel``,
        ``list``...); the style's request headers may depend on it.
    :param settings: the connection: its style reads the answer, its timeout bounds each attempt.
    :param video_task_id: the task the call is about; ``None`` for a create or a list call.
    :param json_body: the JSON body, if any.
    :param uploads: files sent as multipart/form-data instead of JSON (sync calls only).
    :param policy: how transient faults are retried; ``None``: the connection's policy.
    :param retry_if: which errors are retried; ``None``: transient ones.
    :param read: turns the decoded answer into the result inside the attempt, so that an unusable
        answer is retried like any other transient fault; ``None``: the decoded answer is the result.
    :param read_error: turns the typed error of an error answer into the result, or raises it again;
        for an answer that reports the task's end as an HTTP error (fal's result of a failed
        generation). ``None``: the error is raised.
    :param headers: headers of this call alone, beside the style's own for its action (a create's
        ``Cancel-After``); never the key, which only the credential adds.
    :param then: a second call that the result calls for (fal's read of a finished request's result,
        after its status said ``COMPLETED``); its result replaces this call's, with this call's poll
        hint. ``None``, or ``then`` returning ``None``: no second call.
    """

    method: str
    url: str
    action: str
    settings: VideoGenConnectionSettings
    video_task_id: str | None = None
    json_body: Any = None
    uploads: Sequence[Upload] = ()
    policy: RetryPolicy | None = None
    retry_if: Callable[[BaseException], bool] | None = None
    read: Callable[[Any], Any] | None = None
    read_error: Callable[[VideoGenError, Mapping[str, str]], Any] | None = None
    then: Callable[[Any], ApiRequest | None] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Answer(NamedTuple):
    """What one call returned: its result, and the seconds the service asked a poller to wait (``None``: none said)."""

    value: Any
    poll_hint: float | None


class PollAnswer(NamedTuple):
    """What one poll of a video task returned: the task, and the seconds the service asked to wait before the next."""

    task: VideoTask
    poll_hint: float | None


def query(settings: VideoGenConnectionSettings, video_task_id: str, **options: Any) -> ApiRequest:
    """Return the request that reads one video task (its answer is read as that task inside the attempt).

    :param options: more fields of the request (``policy``, ``retry_if``).
    """
    style = settings.style
    return ApiRequest(
        style.query_method,
        settings.task_url(video_task_id),
        "query",
        settings,
        video_task_id,
        json_body=style.query_body(video_task_id),
        read=lambda payload: read_task_payload(payload, settings, video_task_id),
        then=lambda task: _result_read(settings, task, options),
        **options,
    )


def _result_read(settings: VideoGenConnectionSettings, task: VideoTask, options: dict[str, Any]) -> ApiRequest | None:
    """Return the second read a task's status calls for where the style says (fal), else ``None``."""
    style = settings.style
    route = style.result_route(task)
    if route is None:
        return None
    return ApiRequest(
        "GET",
        f"{settings.base_url}{settings.path_prefix}{route}",
        "read the result of",
        settings,
        task.id,
        read=lambda payload: style.read_result(task, payload).with_cost(settings.prices),
        read_error=lambda error, headers: style.result_error(task, error, headers),
        **options,
    )
