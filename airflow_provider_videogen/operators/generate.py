"""``GenerateVideoOperator``: submit a video generation (once), wait for it in the triggerer or the worker, land it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_videogen import _arguments
from airflow_provider_videogen._compat import conf
from airflow_provider_videogen.download import DEFAULT_CHUNK_SIZE
from airflow_provider_videogen.events import final_event_payload, reread_on_success, validate_event, without_file_urls
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.links import LandedVideoLink, VideoServiceConsoleLink, note_console_link
from airflow_provider_videogen.operators.cancel import cancel_if_queued
from airflow_provider_videogen.operators.generation_arguments import checked_generation_params, read_wait_and_cap
from airflow_provider_videogen.operators.generation_cost import refuse_over_budget
from airflow_provider_videogen.operators.generation_finish import finished_generation
from airflow_provider_videogen.operators.landing_step import LandingStep, refuse_an_unusable_destination
from airflow_provider_videogen.operators.submit_once import SubmitOnce, request_identity
from airflow_provider_videogen.operators.worker_wait import wait_in_worker
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger, deferral_timeout
from airflow_provider_videogen.video_task import VideoTask

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath


class GenerateVideoOperator(BaseOperator):
    """Submit a video generation, wait for it (deferred to the triggerer), and return the finished task.

    The id of the new video task is pushed to XCom (key ``video_task_id``) as soon as it exists. With
    ``wait_for_completion=True`` (the default) the operator then waits like
    :class:`~airflow_provider_videogen.sensors.videogen.VideoTaskSensor`: deferred to
    :class:`~airflow_provider_videogen.triggers.videogen.VideoTaskTrigger` when ``deferrable``, else
    polling in the worker. It returns the finished task's ``to_dict()`` (video URL, metadata); a task
    that ends failed, cancelled or expired fails the operator with the API's error code and message.
    With ``wait_for_completion=False`` it returns the id at once.

    With a ``destination`` the task that waited also lands the video once the generation succeeded
    (deferred or not): exactly as :class:`~airflow_provider_videogen.operators.fetch.FetchVideoOperator`
    lands it (the same step: streamed, verified, atomic, idempotent on a retry, asset events through
    ``outlets``, lineage, the landed-video link), and the return value gains FetchVideoOperator's keys
    (``video_path``, ``size_bytes``, ``sha256``, ``last_frame_*``). Two task runs per video instead
    of three (submit and resume, no separate fetch). A retry after the landing failed reconnects to
    the generation (see below) and lands it without paying again; a generation that fails lands nothing.

    A generation costs money, so it is never submitted twice by accident:

    - the create call is retried only where the service surely did not take it (see
      :meth:`VideoGenHook.create_task <airflow_provider_videogen.hooks.videogen.VideoGenHook.create_task>`);
    - on Airflow 3.3+ the new id is saved in the task's ``task_state_store`` before waiting, so a
      retry (after a worker crash, a lost triggerer event, a deadline...) reconnects to the same
      generation instead of paying for a new one. Only a retry after the generation itself ended
      failed, cancelled or expired submits a new one. On Airflow 3.1 and 3.2 there is no such store:
      every try submits a new generation, so keep ``retries`` at 0 there, or wait with a separate
      ``VideoTaskSensor`` (``wait_for_completion=False`` + sensor), which retries without resubmitting.

    With ``cancel_on_kill=True`` (the default) a generation that is still queued is cancelled when
    the task is killed (worker mode: ``on_kill``; deferred: the trigger's ``on_kill`` on Airflow
    3.3+) or when ``timeout`` passes first; a running or finished one is never touched (cancelling
    is not possible once it runs, and on a finished task the same call would delete its video).
    Styles that cannot cancel log it and skip; a style whose cancel call works on a running task too
    cancels a running generation as well (never a finished one): its ``cancellable_statuses`` say
    which, and the docs' style table (on the connection page) lists them.

    :param model: the model to run (templated).
    :param prompt: the text prompt (templated).
    :param image_urls: input images, as URLs or ``{"url": ..., "role": ...}`` with a role of
        ``first_frame``, ``last_frame`` or ``reference_image`` (templated).
    :param content: a raw ``content`` list, instead of prompt and images (templated; see
        :class:`~airflow_provider_videogen.generation_request.VideoGenerationRequest`).
    :param generation_params: other request fields (templated), e.g. ``{"resolution": "720p",
        "ratio": "16:9", "duration": 5, "generate_audio": False, "return_last_frame": True}``; the
        same names work on every API style (a field a style lacks is refused clearly). Not
        ``params``: Airflow reserves that name for the task's Jinja ``params``.
    :param videogen_conn_id: the ``videogen`` connection (templated).
    :param wait_for_completion: wait until the generation ends; ``False`` returns its id at once.
    :param poll_interval: seconds between two status checks while waiting; ``None`` (the default): the
        connection's style's advice (its ``default_poll_interval``, listed in the docs' style table).
    :param timeout: seconds to wait at most (counted from the start of the try), or ``None``. Past
        it the operator fails and, with ``cancel_on_kill``, cancels a generation still queued. With
        ``cancel_on_kill`` and ``wait_for_completion``, a style whose service can stop a generation
        itself at a deadline is asked to, at ``timeout`` after the create (the docs' style table
        says which, and what such a stop is billed).
    :param cancel_on_kill: cancel a generation the style can still cancel (in one of its
        ``cancellable_statuses``) when the task is killed or times out.
    :param deferrable: wait in the triggerer. Defaults to Airflow's ``[operators] default_deferrable``
        (so a deployment without a triggerer does not hang); pass ``True`` to free the worker slot.
    :param http_retry_policy: retries of the API calls (and of broken downloads) within one try; by
        default the connection's.
    :param destination: where to land the video once it succeeded (templated); ``None`` (the default):
        land nothing and return the task. Needs ``wait_for_completion``. ``destination``,
        ``dest_conn_id``, ``include_last_frame``, ``overwrite`` and ``chunk_size`` are
        ``FetchVideoOperator``'s parameters of the same names, with the same rules and defaults.
    :param dest_conn_id: the storage connection of the destination (templated).
    :param include_last_frame: also land the last frame (generate with ``return_last_frame``).
    :param overwrite: replace a destination that holds a different file.
    :param chunk_size: bytes read and written per step of the copy.
    :param include_urls: keep the file URLs in the return value. ``video_url`` and ``last_frame_url``
        are signed, time-limited URLs: anyone who can read the XCom can download the video until
        they expire. ``False`` returns them as ``None`` (and leaves out the ``raw`` answer, which
        holds them too). ``FetchVideoOperator`` lands the video all the same: it reads the task
        again for them.
    :param max_cost: the most this generation may cost, in the currency of the connection's ``prices``
        extra (a number, or its text, e.g. ``"0.50"``). Before the create call the request's cost is
        estimated from the model's price (per video; per second times ``duration``; per million
        tokens times the tokens its size and length make); above the cap, or with no price known for
        the model, the task fails without a retry
        (:class:`~airflow_provider_videogen.exceptions.VideoGenerationOverBudgetError`) and nothing is
        paid. ``None`` (the default): no cap.

    **Cost.** With a ``prices`` extra on the connection, the returned task has a ``cost``
    (``amount`` as a decimal string, ``currency``, ``basis``, ``computed``): ``priced`` from the
    usage the service reported, else ``estimated`` from the request; each finished generation logs
    one line with it. See :mod:`airflow_provider_videogen.cost`.
    """

    template_fields: Sequence[str] = (
        "model",
        "prompt",
        "image_urls",
        "content",
        "generation_params",
        "videogen_conn_id",
        "destination",
        "dest_conn_id",
    )
    template_fields_renderers = {"generation_params": "json", "content": "json", "image_urls": "json"}
    ui_color = "#f8e0c8"
    operator_extra_links = (VideoServiceConsoleLink(), LandedVideoLink())

    #: The ``task_state_store`` key holding the id of the generation this task submitted.
    #: Renaming it would make in-flight retries submit again.
    state_store_key = "video_task_id"

    def __init__(
        self,
        *,
        model: str,
        prompt: str | None = None,
        image_urls: Sequence[str | Mapping[str, Any]] | None = None,
        content: Sequence[Mapping[str, Any]] | None = None,
        generation_params: Mapping[str, Any] | None = None,
        videogen_conn_id: str = VideoGenHook.default_conn_name,
        wait_for_completion: bool = True,
        poll_interval: float | None = None,
        timeout: float | timedelta | None = None,
        cancel_on_kill: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        http_retry_policy: RetryPolicy | None = None,
        include_urls: bool = True,
        max_cost: float | Decimal | str | None = None,
        destination: str | ObjectStoragePath | None = None,
        dest_conn_id: str | None = None,
        include_last_frame: bool = False,
        overwrite: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if destination is not None and not wait_for_completion:
            # Landing comes after the wait; refused now, before a generation is paid for and never landed.
            raise ValueError(
                "destination needs wait_for_completion=True: the video lands once the generation succeeded. "
                "Without waiting, land it with VideoTaskSensor >> FetchVideoOperator(destination=...)."
            )
        # Checked here, when the DAG is parsed, before any create call (see read_wait_and_cap).
        self.poll_interval, self.timeout, self.max_cost = read_wait_and_cap(poll_interval, timeout, max_cost)
        self.model = model
        self.prompt = prompt
        self.image_urls = image_urls
        self.content = content
        self.generation_params = generation_params
        self.videogen_conn_id = videogen_conn_id
        self.wait_for_completion = wait_for_completion
        self.cancel_on_kill = cancel_on_kill
        self.deferrable = deferrable
        self.http_retry_policy = http_retry_policy
        self.include_urls = include_urls
        self.destination = destination
        self.dest_conn_id = dest_conn_id
        self.include_last_frame = include_last_frame
        self.overwrite = overwrite
        self.chunk_size = _arguments.whole_number("chunk_size", chunk_size)
        self._landing_step = LandingStep()
        self._waiting_for: str | None = None
        # The task instance's key, once a try runs: what the request's idempotency token is derived from.
        self._request_identity: str | None = None
        self._submit_once = SubmitOnce()
        # The finished task of this try, for the OpenLineage facets.
        self._finished: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> VideoGenHook:
        """The sync hook (the trigger makes its own async one)."""
        return VideoGenHook(self.videogen_conn_id, retry_policy=self.http_retry_policy)

    def generation_request(self) -> VideoGenerationRequest:
        """Build the request this operator submits from its (rendered) fields.

        The numeric fields of ``generation_params`` are checked here, once rendered and before the
        create call: a templated value arrives as text (``"{{ params.duration }}"`` renders ``"5"``),
        which is read as the number it spells; anything else that is not a proper number is refused.
        """
        return VideoGenerationRequest.from_fields(
            model=self.model,
            prompt=self.prompt,
            image_urls=tuple(self.image_urls or ()),
            content=self.content,
            # Nobody waits past the timeout: the service may stop the generation itself then. Not
            # without cancel_on_kill (the user keeps it running) or a wait (a sensor may wait longer).
            cancel_after=self.timeout if self.cancel_on_kill and self.wait_for_completion else None,
            request_identity=self._request_identity,
            **checked_generation_params(self.generation_params),
        )

    def execute(self, context: Context) -> Any:
        """Submit (or reconnect to) the generation, then wait for it as configured."""
        started_at = time.time()
        self._request_identity = request_identity(context)
        self._submit_once.begin(context, self.state_store_key, self.hook, self.log)
        with self._submit_once.ending_the_try(context):
            refuse_an_unusable_destination(self.destination)  # before anything is paid for
            video_task_id, known = self._reconnect_or_submit(context)
            note_console_link(self, self.hook, video_task_id)
            if not self.wait_for_completion:
                self._finished = {"id": video_task_id}
                return video_task_id
            if known is not None and known.is_terminal:
                return self._finish(final_event_payload(video_task_id, known, full_task=True), started_at, context)
            end_time = started_at + self.timeout if self.timeout is not None else None
            if not self.deferrable:
                return self._wait_in_worker(video_task_id, end_time, started_at, context)
            self.defer(
                trigger=VideoTaskTrigger(
                    video_task_id=video_task_id,
                    videogen_conn_id=self.videogen_conn_id,
                    poll_interval=self._poll_interval(),
                    end_time=end_time,
                    cancel_on_kill=self.cancel_on_kill,
                ),
                method_name="execute_complete",
                kwargs={"started_at": started_at},
                timeout=deferral_timeout(end_time, self.hook.settings.timeout),
            )

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, started_at: float | None = None
    ) -> dict[str, Any]:
        """Resume on the worker with the trigger's event: return the task, or fail with the reason."""
        self._submit_once.begin(context, self.state_store_key, self.hook, self.log)
        with self._submit_once.ending_the_try(context):
            video_task_id = event.get("video_task_id") if isinstance(event, Mapping) else None
            checked = validate_event(event, str(video_task_id or "(unknown)"), "operator")
            note_console_link(self, self.hook, checked["video_task_id"])
            return self._finish(reread_on_success(checked, self.hook.get_task), started_at, context)

    def on_kill(self) -> None:
        """Cancel the generation if it is still queued (worker mode; deferred waits cancel in the trigger).

        A kill that comes while the create call is under way acts once the call returns the new id:
        the id is saved for the next try first, then the generation is cancelled where it can be. A
        copy of the landed video in progress is stopped and its temporary file removed.
        """
        self._submit_once.killed = True
        self._landing_step.cancel()
        if not self.cancel_on_kill:
            return
        if self._waiting_for is not None:
            cancel_if_queued(self.hook, self.log, self._waiting_for, reason="the task was killed")
        elif self._submit_once.submitting:
            self.log.warning("The task was killed while submitting: the generation is cancelled once it has an id.")

    # ---- helpers ----

    def _reconnect_or_submit(self, context: Context) -> tuple[str, VideoTask | None]:
        """Return the id of this task's generation: the one an earlier try submitted, if usable, else a new one."""
        cancel = partial(cancel_if_queued, self.hook, self.log) if self.cancel_on_kill else None
        return self._submit_once.reconnect_or_submit(context, self._request_within_budget, cancel)

    def _request_within_budget(self) -> VideoGenerationRequest:
        """Build the request about to be submitted; with ``max_cost``, refuse it when its estimate is above the cap."""
        request = self.generation_request()
        if self.max_cost is not None:
            refuse_over_budget(request, self.max_cost, self.hook.settings.prices, self.videogen_conn_id, self.log)
        return request

    def _poll_interval(self) -> float:
        """Return the interval asked for, else the one the connection's style advises."""
        return self.poll_interval or self.hook.settings.style.default_poll_interval

    def _wait_in_worker(
        self, video_task_id: str, end_time: float | None, started_at: float, context: Context
    ) -> dict[str, Any]:
        self._waiting_for = video_task_id  # what a kill cancels meanwhile
        try:
            event = wait_in_worker(self.hook, video_task_id, end_time, self._poll_interval, self.log)
            return self._finish(event, started_at, context)
        finally:
            self._waiting_for = None

    def _finish(self, event: Mapping[str, Any], started_at: float | None, context: Context) -> dict[str, Any]:
        """Log the outcome on the worker and turn the event into the return value (the landed video) or an exception."""
        finished = finished_generation(
            event,
            started_at,
            self.hook,
            self.log,
            cancel_on_kill=self.cancel_on_kill,
            request=self.generation_request,
            model=self.model,
        )
        if self.destination is not None:
            # The task as the wait last read it (to_dict() keeps the fresh, signed URLs): no second read.
            task = VideoTask.from_dict(finished)
            finished = {**finished, **self._landing_step.land_as_configured(self, context, task, self.hook.settings)}
        self._finished = finished if self.include_urls else without_file_urls(finished)
        return self._finished

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the generation made (output, named by the service's base URL and the task id) and the run facet.

        With a ``destination``, the landed files too. Called by Airflow's OpenLineage provider when it
        is installed; the provider needs nothing otherwise.
        """
        return self._landing_step.generation_lineage(self.hook.settings.base_url, self._finished)
