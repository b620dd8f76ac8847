"""Operators of the VideoGen provider: thin wrappers that build the hook, make the call and decide."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_videogen import _arguments
from airflow_provider_videogen._compat import AirflowFailException, TaskDeferred, conf
from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.download import DEFAULT_CHUNK_SIZE, Landing
from airflow_provider_videogen.events import (
    event_payload,
    final_event_payload,
    raise_for_event,
    reread_on_success,
    validate_event,
)
from airflow_provider_videogen.exceptions import (
    VideoGenerationNotSavedError,
    VideoGenerationOutcomeUnknownError,
    VideoGenError,
    VideoGenNotSupportedError,
    VideoGenTransientError,
    VideoTaskIdMissingError,
    VideoTaskMayExistError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.generation_record import GenerationRecord, generation_record
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.links import (
    LandedVideoLink,
    VideoServiceConsoleLink,
    landed_video_url,
    note_console_link,
    note_link,
)
from airflow_provider_videogen.retry import POLL_SCHEDULE
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger, deferral_timeout
from airflow_provider_videogen.video_task import VideoTask

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath


class FetchVideoOperator(BaseOperator):
    """Read a succeeded video task; return its metadata, or land its video in object storage.

    Video URLs expire about 24 hours after generation: landing the file is what makes a generation
    durable. Without ``destination`` nothing is downloaded and the task's ``to_dict()`` (video URL,
    last-frame URL and all metadata) is returned. With ``destination`` the video is streamed through
    Airflow's ``ObjectStoragePath`` (any backend Airflow supports) and the return value also holds
    ``video_path`` and ``last_frame_path`` (plain URIs, or ``None``), and ``size_bytes`` and
    ``sha256`` of the video written (``last_frame_size_bytes`` and ``last_frame_sha256`` likewise).

    The copy is streamed in chunks (memory stays flat), checked against ``Content-Length`` (and the
    host's SHA-256 when it advertises one), resumed with ``Range`` or restarted when the stream
    breaks, written under a temporary name and moved into place only when complete. A retry after a
    successful copy verifies the existing file and downloads nothing; see
    :mod:`airflow_provider_videogen.download` for the details per backend.

    The video task must have succeeded. A queued or running task raises
    :class:`~airflow_provider_videogen.exceptions.VideoTaskNotReadyError` (put a
    ``VideoTaskSensor`` before this operator); a failed, cancelled or expired one raises
    :class:`~airflow_provider_videogen.exceptions.VideoTaskFailedError` with the API's error code
    and message, and a refused (expired) file URL raises
    :class:`~airflow_provider_videogen.exceptions.VideoURLExpiredError`; neither of the last two
    is retried by Airflow, since retrying cannot change them.

    .. code-block:: python

        wait = VideoTaskSensor(task_id="wait", video_task_id="{{ ti.xcom_pull('generate') }}", deferrable=True)
        fetch = FetchVideoOperator(
            task_id="fetch",
            video_task_id="{{ ti.xcom_pull('generate') }}",
            destination="s3://my-bucket/videos/{{ ds }}/",
            dest_conn_id="aws_default",
            include_last_frame=True,
        )
        wait >> fetch

    :param video_task_id: the id the create call returned (templated), e.g.
        ``"{{ ti.xcom_pull('generate') }}"``.
    :param videogen_conn_id: the ``videogen`` connection (templated).
    :param destination: where to land the video (templated): a URL such as
        ``s3://bucket/videos/{{ ds }}/`` or ``file:///data/videos/x.mp4``, an absolute path, or an
        ``ObjectStoragePath``; a relative or malformed destination is refused before anything is downloaded.
        One ending in ``/`` (or an existing folder) is a folder and the file is named
        ``<video_task_id>.mp4``; anything else is the file's own path. ``None``: metadata only.
    :param dest_conn_id: the storage connection of the destination, e.g. an ``aws`` connection
        (templated); ``None`` uses the backend's default credentials.
    :param include_last_frame: also land the last frame PNG beside the video, as ``<name>.png``
        (the task must have been created with ``return_last_frame``).
    :param overwrite: replace a destination that holds a different file; otherwise that is an error.
        A destination that already holds this very file is never an error and is never rewritten.
    :param chunk_size: bytes read and written per step of the copy.
    :param http_retry_policy: retries of API calls and of broken downloads within one try of the
        task; by default the connection's. (Airflow's own ``retry_policy`` decides whether the task is
        retried.)

    **Assets.** The videos this task lands can drive other DAGs: declare them in ``outlets``. With a
    fixed destination, ``outlets=[Asset("s3://bucket/videos/")]`` works as for any task, and its
    event's ``extra`` describes the landed video. With a templated or mapped destination, use an
    alias, ``outlets=[AssetAlias("videogen_videos")]``: every landed video becomes an event of the
    asset named by its own URI (``s3://bucket/videos/2026-01-01/<id>.mp4``), added through the
    alias, and a DAG with ``schedule=AssetAlias("videogen_videos")`` runs when videos arrive. Each
    event's ``extra`` holds ``video_task_id``, ``model``, ``video_path``, ``sha256``, ``size_bytes``,
    ``duration`` and ``last_frame_path`` (see :func:`asset_event_extra`). Without ``destination``
    nothing lands and no extra is added.
    """

    template_fields: Sequence[str] = ("video_task_id", "destination", "videogen_conn_id", "dest_conn_id")
    ui_color = "#d8e8f8"
    operator_extra_links = (LandedVideoLink(),)

    def __init__(
        self,
        *,
        video_task_id: str,
        videogen_conn_id: str = VideoGenHook.default_conn_name,
        destination: str | ObjectStoragePath | None = None,
        dest_conn_id: str | None = None,
        include_last_frame: bool = False,
        overwrite: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        http_retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.video_task_id = video_task_id
        self.videogen_conn_id = videogen_conn_id
        self.destination = destination
        self.dest_conn_id = dest_conn_id
        self.include_last_frame = include_last_frame
        self.overwrite = overwrite
        self.chunk_size = _arguments.whole_number("chunk_size", chunk_size)
        self.http_retry_policy = http_retry_policy
        self._landing: Landing | None = None
        # What this try read and landed, for the OpenLineage facets.
        self._base_url: str | None = None
        self._landed: dict[str, Any] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        """Fetch the task; copy its files when a destination is set; return the result described above."""
        hook = VideoGenHook(self.videogen_conn_id, retry_policy=self.http_retry_policy)
        task = hook.get_task(self.video_task_id)
        self._base_url = hook.settings.base_url
        self._landing = Landing(
            self.destination,
            dest_conn_id=self.dest_conn_id,
            include_last_frame=self.include_last_frame,
            overwrite=self.overwrite,
            chunk_size=self.chunk_size,
            retry_policy=self.http_retry_policy,
        )
        landed = self._landing.land(task, hook.settings).to_xcom()
        if self.destination is None:
            self.log.info("Video task %s succeeded; returning its metadata (no destination, nothing copied).", task.id)
            return landed
        self._landed = landed
        note_link(self, LandedVideoLink, landed_video_url(landed["video_path"], self.dest_conn_id))
        emit_asset_events(self, context, landed)
        return landed

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the generation read (input), the video and last frame landed (outputs), the run facet.

        Called by Airflow's OpenLineage provider when it is installed; the provider needs nothing otherwise.
        """
        from airflow_provider_videogen.lineage import fetch_lineage

        return fetch_lineage(self._base_url or "", self._landed)

    def on_kill(self) -> None:
        """Stop a copy in progress and remove its temporary file."""
        if self._landing is not None:
            self._landing.cancel()


class GenerateVideoOperator(BaseOperator):
    """Submit a video generation, wait for it (deferred to the triggerer), and return the finished task.

    The id of the new video task is pushed to XCom (key ``video_task_id``) as soon as it exists. With
    ``wait_for_completion=True`` (the default) the operator then waits like
    :class:`~airflow_provider_videogen.sensors.videogen.VideoTaskSensor`: deferred to
    :class:`~airflow_provider_videogen.triggers.videogen.VideoTaskTrigger` when ``deferrable``, else
    polling in the worker. It returns the finished task's ``to_dict()`` (video URL, metadata); a task
    that ends failed, cancelled or expired fails the operator with the API's error code and message.
    With ``wait_for_completion=False`` it returns the id at once.

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
        it the operator fails and, with ``cancel_on_kill``, cancels a generation still queued.
    :param cancel_on_kill: cancel a generation the style can still cancel (in one of its
        ``cancellable_statuses``) when the task is killed or times out.
    :param deferrable: wait in the triggerer. Defaults to Airflow's ``[operators] default_deferrable``
        (so a deployment without a triggerer does not hang); pass ``True`` to free the worker slot.
    :param http_retry_policy: retries of the API calls within one try; by default the connection's.
    """

    template_fields: Sequence[str] = (
        "model",
        "prompt",
        "image_urls",
        "content",
        "generation_params",
        "videogen_conn_id",
    )
    template_fields_renderers = {"generation_params": "json", "content": "json", "image_urls": "json"}
    ui_color = "#f8e0c8"
    operator_extra_links = (VideoServiceConsoleLink(),)

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Checked here, when the DAG is parsed: a value found wrong only once the trigger is built
        # would come after the create call, which has then paid for a generation nobody waits for.
        # (Neither is a template field, so neither can be a Jinja string.)
        self.poll_interval = None if poll_interval is None else _arguments.seconds("poll_interval", poll_interval)
        self.timeout = None if timeout is None else _arguments.seconds("timeout", timeout)
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
        self._waiting_for: str | None = None
        self._submitting = False
        self._killed = False
        self._record: GenerationRecord | None = None
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
        params = dict(self.generation_params or {})
        for name, (read, options) in _NUMERIC_GENERATION_PARAMS.items():
            value = params.get(name)
            if value is None:
                continue
            try:
                number = read(f"generation_params[{name!r}]", value, text_ok=True, **options)
            except ValueError as error:
                raise refused(str(error)) from None
            # A whole length goes out as an integer, as given (5, not 5.0: some services parse it into one).
            whole = isinstance(number, float) and number.is_integer() and not isinstance(value, float)
            params[name] = int(number) if whole else number
        return VideoGenerationRequest.from_fields(
            model=self.model,
            prompt=self.prompt,
            image_urls=tuple(self.image_urls or ()),
            content=self.content,
            **params,
        )

    def execute(self, context: Context) -> Any:
        """Submit (or reconnect to) the generation, then wait for it as configured."""
        started_at = time.time()
        self._record = generation_record(context, self.state_store_key)
        with self._ending_the_try(context):
            video_task_id, known = self._reconnect_or_submit(context)
            note_console_link(self, self.hook, video_task_id)
            if not self.wait_for_completion:
                self._finished = {"id": video_task_id}
                return video_task_id
            if known is not None and known.is_terminal:
                return self._finish(final_event_payload(video_task_id, known, full_task=True), started_at)
            end_time = started_at + self.timeout if self.timeout is not None else None
            if not self.deferrable:
                return self._wait_in_worker(video_task_id, end_time, started_at)
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
        self._record = generation_record(context, self.state_store_key)
        with self._ending_the_try(context):
            video_task_id = event.get("video_task_id") if isinstance(event, Mapping) else None
            checked = validate_event(event, str(video_task_id or "(unknown)"), "operator")
            note_console_link(self, self.hook, checked["video_task_id"])
            return self._finish(reread_on_success(checked, self.hook.get_task), started_at)

    def on_kill(self) -> None:
        """Cancel the generation if it is still queued (worker mode; deferred waits cancel in the trigger).

        A kill that comes while the create call is under way acts once the call returns the new id:
        the id is saved for the next try first, then the generation is cancelled where it can be.
        """
        self._killed = True
        if not self.cancel_on_kill:
            return
        if self._waiting_for is not None:
            self._cancel_if_queued(self._waiting_for, reason="the task was killed")
        elif self._submitting:
            self.log.warning("The task was killed while submitting: the generation is cancelled once it has an id.")

    # ---- helpers ----

    def _reconnect_or_submit(self, context: Context) -> tuple[str, VideoTask | None]:
        """Return the id of this task's generation: the one an earlier try submitted, if usable, else a new one."""
        record = self._record
        if record is None:
            self.log.debug("No durable record for this task: a retry of it submits again.")
        else:
            previous = record.get()
            if previous is not None:
                task = self._previous_task(previous)
                if task is not None and not task.status.is_failure:
                    self.log.info(
                        "Reconnecting to video task %s (%s), submitted by an earlier try: not submitting again.",
                        previous,
                        task.status.value,
                    )
                    context["ti"].xcom_push(key="video_task_id", value=previous)
                    return previous, task
        self._submitting = True
        try:
            video_task_id = self.hook.create_task(self.generation_request())
        except (VideoTaskMayExistError, VideoTaskIdMissingError) as error:
            # A retry would submit again without knowing whether this generation exists: pay at most once.
            raise VideoGenerationOutcomeUnknownError(
                f"{error} This task fails without retries so that no second generation is paid for. If the "
                "service's task list shows the generation, wait for it with VideoTaskSensor(video_task_id=...) "
                "and fetch it; if it does not, clear this task to submit again."
            ) from error
        finally:
            self._submitting = False
        # The id reaches XCom and the log first: whatever fails next, a person can still find it.
        context["ti"].xcom_push(key="video_task_id", value=video_task_id)
        self.log.info("Submitted video task %s.", video_task_id)
        # The record first, even after a kill: a generation that cannot be cancelled (no cancel call,
        # or already running) goes on and is paid for, and only the record lets the next try reconnect.
        try:
            if record is not None:
                self._save(record, video_task_id)
        except BaseException:
            # Saving failed for good (the task ends without retries); a kill still cancels what it can.
            if self._killed and self.cancel_on_kill:
                self._cancel_if_queued(video_task_id, reason="the task was killed while submitting it")
            raise
        if self._killed:
            self._end_killed_submission(video_task_id)
        return video_task_id, None

    def _save(self, record: GenerationRecord, video_task_id: str) -> None:
        """Keep the id where a retry finds it; if that keeps failing, end the task for good rather than pay twice."""
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            try:
                record.save(video_task_id)
                return
            except Exception as error:
                if attempt == _SAVE_ATTEMPTS:
                    cause = record.why_not_saved()
                    raise VideoGenerationNotSavedError(
                        f"Video task {video_task_id} was submitted, but its id could not be saved in {record.where} "
                        f"({type(error).__name__}: {error}), so a retry of this task would submit and pay for "
                        "another generation: the task fails without retries instead. The generation goes on: wait "
                        f"for it with VideoTaskSensor(video_task_id={video_task_id!r}) (the id is also in this "
                        "task's XCom under video_task_id)." + (f" Why the write fails: {cause}" if cause else ""),
                        video_task_id=video_task_id,
                    ) from error
                self.log.warning(
                    "Saving the id of video task %s in %s failed (%s); trying again.",
                    video_task_id,
                    record.where,
                    error,
                )
                time.sleep(_SAVE_BACKOFF * attempt)

    def _end_killed_submission(self, video_task_id: str) -> None:
        """After the record is saved: cancel the generation a kill came during the create of, if it can; end the try."""
        if self.cancel_on_kill:
            self._cancel_if_queued(video_task_id, reason="the task was killed while submitting it")
        raise VideoGenError(
            f"The task was killed while submitting video task {video_task_id}; not waiting for it. Its id is kept "
            "for this task's next try, which reconnects to it unless it was cancelled.",
            video_task_id=video_task_id,
        )

    @contextmanager
    def _ending_the_try(self, context: Context) -> Iterator[None]:
        """Drop the durable record once the task ends: it succeeded, or it failed with no retry to follow."""
        try:
            yield
        except TaskDeferred:
            raise
        except BaseException as error:
            if self._record is not None and not _will_retry(context, error):
                self._record.forget()
            raise
        if self._record is not None:
            self._record.forget()

    def _previous_task(self, video_task_id: str) -> VideoTask | None:
        """Read the generation an earlier try submitted; ``None`` only when the API itself says it is gone."""
        try:
            # A 404 from a proxy in front of the API is no proof the task is gone, and taking it for
            # gone pays for the generation again: only the API's own "not found" counts.
            task = self.hook.get_task(video_task_id, only_the_api_says_not_found=True)
        except VideoTaskNotFoundError as error:
            # The record is at most RETENTION (7 days) old, as long as the contents-generations API
            # keeps tasks: such a task is expected to be there still. Say so loudly, as the new
            # generation is paid for and the old one may not be lost (another key or data center).
            self.log.warning(
                "Video task %s, submitted by an earlier try of this task less than 7 days ago, is not found at %s "
                "(%s: %s): it expired (some services keep tasks for a day or two), was deleted, or the connection "
                "now points at another account, data center or gateway. Submitting a new generation.",
                video_task_id,
                self.hook.settings.base_url,
                error.api_code or f"HTTP {error.http_status}",
                error.api_message or "no message",
            )
            return None
        except VideoGenTransientError as error:
            raise VideoGenTransientError(
                f"Could not tell whether video task {video_task_id}, submitted by an earlier try of this task, "
                "still exists, so not submitting again (that could pay for a second generation); the next try "
                f"of this task looks again. {error}",
                video_task_id=video_task_id,
                http_status=error.http_status,
                api_code=error.api_code,
                api_message=error.api_message,
                retry_after=error.retry_after,
            ) from None
        if task.status.is_failure:
            self.log.warning("%s: submitting a new generation.", _sentence(task.describe_failure()))
        return task

    def _poll_interval(self) -> float:
        """Return the interval asked for, else the one the connection's style advises."""
        return self.poll_interval or self.hook.settings.style.default_poll_interval

    def _wait_in_worker(self, video_task_id: str, end_time: float | None, started_at: float) -> dict[str, Any]:
        self._waiting_for = video_task_id
        last_status = None
        try:
            while True:
                task, poll_hint = self.hook.poll_answer(video_task_id)
                if task.is_terminal:
                    return self._finish(final_event_payload(video_task_id, task, full_task=True), started_at)
                if task.status is not last_status:
                    last_status = task.status
                    self.log.info("Video task %s is %s.", video_task_id, task.status.value)
                if end_time is not None and time.time() >= end_time:
                    return self._finish(_timeout_payload(video_task_id, task, end_time), started_at)
                wait = POLL_SCHEDULE.next_wait(poll_hint=poll_hint, interval=self._poll_interval())
                remaining = end_time - time.time() if end_time is not None else wait
                time.sleep(max(0.0, min(wait, remaining)))
        finally:
            self._waiting_for = None

    def _finish(self, event: Mapping[str, Any], started_at: float | None) -> dict[str, Any]:
        """Log the outcome on the worker and turn the event into the return value or an exception."""
        status, message = event["status"], event["message"]
        video_task_id = event["video_task_id"]
        waited = f"{time.time() - started_at:.0f} s" if started_at is not None else "unknown"
        self.log.info("Video task %s: %s (waited %s). %s", video_task_id, status, waited, message)
        if status == "timeout" and self.cancel_on_kill:
            self._cancel_if_queued(video_task_id, reason="the deadline passed")
        self._finished = raise_for_event(event, "operator")
        return self._finished

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the generation made (output, named by the service's base URL and the task id) and the run facet.

        Called by Airflow's OpenLineage provider when it is installed; the provider needs nothing otherwise.
        """
        from airflow_provider_videogen.lineage import generation_lineage

        return generation_lineage(self.hook.settings.base_url, self._finished)

    def _cancel_if_queued(self, video_task_id: str, *, reason: str) -> None:
        try:
            if self.hook.cancel_task(video_task_id):
                self.log.warning("Cancelled video task %s because %s.", video_task_id, reason)
        except VideoGenNotSupportedError as error:
            self.log.info("Not cancelling video task %s: %s", video_task_id, error)
        except VideoGenError as error:
            self.log.warning("Could not cancel video task %s: %s", video_task_id, error)


#: The keys of the landed result that each asset event's ``extra`` carries.
ASSET_EXTRA_KEYS = ("video_task_id", "model", "video_path", "sha256", "size_bytes", "duration", "last_frame_path")


def asset_event_extra(landed: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ``extra`` of the asset event of one landed video (JSON-safe; no URL, so nothing signed)."""
    extra = {key: landed.get(key) for key in ASSET_EXTRA_KEYS if key != "video_task_id"}
    return {"video_task_id": landed.get("id"), **extra}


def emit_asset_events(operator: BaseOperator, context: Context, landed: Mapping[str, Any]) -> None:
    """Describe the landed video in the events of the task's outlets: plain assets get the extra, aliases an asset.

    An ``AssetAlias`` outlet adds one event for the asset named by the video's URI; an ``Asset``
    outlet's own event gets the extra (a warning says when that asset does not contain the video).
    """
    outlets = list(getattr(operator, "outlets", None) or ())
    if not outlets:
        return
    from airflow.sdk import Asset, AssetAlias

    extra = asset_event_extra(landed)
    video_path = str(landed["video_path"])
    events = context["outlet_events"]
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            events[outlet].add(Asset(video_path), extra=extra)
            operator.log.info("Asset event for %s through alias %r.", video_path, outlet.name)
        elif isinstance(outlet, Asset):
            events[outlet].extra.update(extra)
            if not _asset_holds(outlet.uri, video_path):
                operator.log.warning(
                    "The outlet asset %s does not contain the landed video %s: its event describes a video "
                    "elsewhere. For a templated or mapped destination use an AssetAlias outlet instead.",
                    outlet.uri,
                    video_path,
                )


def _asset_holds(asset_uri: str, video_path: str) -> bool:
    """Whether the asset's URI is the video's own or a folder holding it."""
    return video_path == asset_uri or video_path.startswith(asset_uri.rstrip("/") + "/")


# The numeric fields of a generation request, each with its check: a length in seconds, or a whole
# number (the seed may be negative: -1 asks for a random one).
_NUMERIC_GENERATION_PARAMS: dict[str, tuple[Callable[..., float], dict[str, Any]]] = {
    "duration": (_arguments.seconds, {}),
    "frames": (_arguments.whole_number, {}),
    "seed": (_arguments.whole_number, {"minimum": None}),
    "execution_expires_after": (_arguments.whole_number, {}),
    "width": (_arguments.whole_number, {}),
    "height": (_arguments.whole_number, {}),
    "fps": (_arguments.whole_number, {}),
}
# Saving the id after a create: attempts, and the pause after the first failure (growing).
_SAVE_ATTEMPTS = 3
_SAVE_BACKOFF = 0.5


def _will_retry(context: Context, error: BaseException) -> bool:
    """Whether Airflow retries the task after this try fails with ``error`` (unknown: assume it does)."""
    if isinstance(error, AirflowFailException):
        return False
    ti = context.get("ti")
    try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
    if not isinstance(try_number, int) or not isinstance(max_tries, int):
        return True
    return try_number <= max_tries


def _timeout_payload(video_task_id: str, task: VideoTask, end_time: float) -> dict[str, Any]:
    deadline = datetime.fromtimestamp(end_time, tz=timezone.utc).isoformat(timespec="seconds")
    message = f"Video task {video_task_id!r} was still {task.status.value} at the deadline ({deadline})."
    return event_payload("timeout", video_task_id, message, task)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
