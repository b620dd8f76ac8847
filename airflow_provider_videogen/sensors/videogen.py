"""``VideoTaskSensor``: wait until a video task reaches a final state, deferred to Airflow's triggerer."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from airflow.exceptions import AirflowException
from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_videogen import _arguments
from airflow_provider_videogen._compat import AirflowSkipException, conf
from airflow_provider_videogen.events import (
    final_event_payload,
    raise_for_event,
    reread_on_success,
    validate_event,
    without_file_urls,
)
from airflow_provider_videogen.exceptions import VideoGenTransientError
from airflow_provider_videogen.hooks.videogen import VideoGenHook
from airflow_provider_videogen.links import VideoServiceConsoleLink, note_console_link
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger, deferral_timeout
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["VideoTaskSensor"]


class VideoTaskSensor(BaseSensorOperator):
    """Wait until a video task reaches a final state; succeed with the task, or fail with the API's reason.

    Deferrable: with ``deferrable=True`` the sensor checks the task once, then hands the wait to
    Airflow's triggerer (:class:`~airflow_provider_videogen.triggers.videogen.VideoTaskTrigger`), so a
    waiting video holds no worker slot. With ``deferrable=False`` it pokes with the sync hook in the
    classic ``poke`` or ``reschedule`` mode.

    On success the XCom return value is the task as
    :meth:`VideoTask.to_dict() <airflow_provider_videogen.video_task.VideoTask.to_dict>` (``video_url``,
    ``last_frame_url``, ``duration``, ``resolution``...). A task that ends ``failed``, ``cancelled``
    or ``expired`` fails the sensor without retries (retrying cannot change a final state), with a
    message naming the task, its final status and the API's error code and message. Reaching
    ``timeout`` fails it as a sensor timeout (skipped with ``soft_fail=True``) in every mode.

    .. code-block:: python

        wait = VideoTaskSensor(
            task_id="wait_for_video",
            video_task_id="{{ ti.xcom_pull(task_ids='submit_video') }}",
            deferrable=True,
            poke_interval=15,
            timeout=3600,
        )

    :param video_task_id: the id the create call returned (templated).
    :param videogen_conn_id: the ``videogen`` connection to use (templated).
    :param poke_interval: seconds between two checks (also the trigger's poll interval); ``None`` (the
        default): the connection's style's advice (its ``default_poll_interval``, listed in the docs'
        style table).
    :param timeout: seconds to wait in all, counted from the first check; defaults to Airflow's
        ``[sensors] default_timeout``.
    :param deferrable: wait in the triggerer. Defaults to Airflow's ``[operators] default_deferrable``
        setting (``False`` unless set), so that a deployment without a triggerer does not hang; pass
        ``True`` to free the worker slot while the video renders.
    :param include_urls: keep the file URLs in the return value. ``video_url`` and ``last_frame_url``
        are signed, time-limited URLs: anyone who can read the XCom can download the video until
        they expire. ``False`` returns them as ``None`` (and leaves out the ``raw`` answer, which
        holds them too).
    """

    template_fields: Sequence[str] = ("video_task_id", "videogen_conn_id")
    ui_color = "#e8dff5"
    operator_extra_links = (VideoServiceConsoleLink(),)

    def __init__(
        self,
        *,
        video_task_id: str,
        videogen_conn_id: str = VideoGenHook.default_conn_name,
        poke_interval: timedelta | float | None = None,
        timeout: timedelta | float | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        include_urls: bool = True,
        **kwargs: Any,
    ) -> None:
        timeout_name = "timeout"
        if timeout is None:
            # Airflow 3.1's BaseSensorOperator does not accept None.
            timeout, timeout_name = conf.getfloat("sensors", "default_timeout"), "[sensors] default_timeout"
        # Checked here rather than left to Airflow, which takes True for 1 s, meets inf with a bare
        # OverflowError, and takes a deadline past the year 9999 that the trigger then cannot write.
        # 0 is Airflow's "check once" (timeout) and "no pause" (poke_interval, when poking: a
        # deferrable sensor needs a pause between polls).
        timeout = _arguments.seconds(timeout_name, timeout, zero_ok=True)
        if poke_interval is not None:
            poke_interval = _arguments.seconds("poke_interval", poke_interval, zero_ok=not deferrable)
        # Resolved from the connection's style when the task runs (the connection is not read here).
        self._style_poke_interval = poke_interval is None
        super().__init__(poke_interval=10 if poke_interval is None else poke_interval, timeout=timeout, **kwargs)
        self.video_task_id = video_task_id
        self.videogen_conn_id = videogen_conn_id
        self.deferrable = deferrable
        self.include_urls = include_urls
        self._last_status: VideoTaskStatus | None = None
        self._started_at: float | None = None

    @cached_property
    def hook(self) -> VideoGenHook:
        """The sync hook (the trigger makes its own async one)."""
        return VideoGenHook(self.videogen_conn_id)

    def execute(self, context: Context) -> Any:
        """Check the task; defer to the trigger unless it is already final (or poke when not deferrable)."""
        if self._style_poke_interval:
            self.poke_interval = self.hook.settings.style.default_poll_interval
        try:
            note_console_link(self, self.hook, self.video_task_id)
            if not self.deferrable:
                self._started_at = self._poke_started_at(context)
                return super().execute(context)
            try:
                return self._check_then_defer()
            except AirflowException as error:
                # The same rule Airflow applies to whatever execute_complete raises.
                self._raise_soft(error)
        finally:
            if "hook" in self.__dict__:
                self.hook.close()

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Check the task once (``deferrable=False``)."""
        task = self.hook.get_task(self.video_task_id)
        if not task.is_terminal:
            self._log_status_change(task)
            return False
        waited = time.time() - self._started_at if self._started_at is not None else None
        return PokeReturnValue(
            is_done=True,
            xcom_value=self._complete(final_event_payload(self.video_task_id, task, full_task=True), waited),
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, wait_started_at: float | None = None
    ) -> dict[str, Any]:
        """Resume on the worker with the trigger's event: return the task, or raise why the wait ended."""
        waited = time.time() - wait_started_at if wait_started_at is not None else None
        checked = validate_event(event, self.video_task_id, "sensor")
        try:
            note_console_link(self, self.hook, self.video_task_id)
            return self._complete(reread_on_success(checked, self.hook.get_task), waited)
        finally:
            if "hook" in self.__dict__:
                self.hook.close()

    # ---- helpers ----

    def _check_then_defer(self) -> dict[str, Any]:
        started_at = time.time()
        task: VideoTask | None
        first_poll_at: float | None = None
        try:
            task, hint = self.hook.poll_answer(self.video_task_id)
            if hint is not None:
                # The service's wait before the next look (openai-poll-after-ms) holds across the deferral.
                first_poll_at = time.time() + hint
        except VideoGenTransientError as error:
            # The trigger is built to poll through such faults: wait there rather than fail now.
            self.log.warning(
                "Could not check video task %s before deferring (%s); deferring anyway.", self.video_task_id, error
            )
            task = None
        if task is not None and task.is_terminal:
            return self._complete(final_event_payload(self.video_task_id, task, full_task=True), waited=0.0)
        if task is not None:
            self._log_status_change(task)
        end_time = started_at + self.timeout
        self.defer(
            trigger=VideoTaskTrigger(
                video_task_id=self.video_task_id,
                videogen_conn_id=self.videogen_conn_id,
                poll_interval=self.poke_interval,
                end_time=end_time,
                first_poll_at=first_poll_at,
            ),
            method_name="execute_complete",
            kwargs={"wait_started_at": started_at},
            timeout=deferral_timeout(end_time, self.hook.settings.timeout),
        )

    def _complete(self, event: Mapping[str, Any], waited: float | None) -> dict[str, Any]:
        """Log the outcome on the worker and turn the event into the return value or an exception."""
        status = event["status"]
        task_data = event.get("task")
        task = VideoTask.from_dict(task_data) if isinstance(task_data, Mapping) else None
        facts = (
            self.video_task_id,
            status,
            task.status.value if task is not None else "unknown",
            _format_duration(waited),
            _url_host(task.video_url if task is not None else None),
            event["message"],
        )
        # Logged again here because the triggerer's log of the wait is easy to lose.
        template = "Video task %s: wait ended with %s; task status %s; waited %s; video URL host %s. %s"
        (self.log.info if status == "success" else self.log.warning)(template, *facts)
        finished = raise_for_event(event, "sensor")
        return finished if self.include_urls else without_file_urls(finished)

    def _raise_soft(self, error: AirflowException) -> NoReturn:
        if self.soft_fail:
            raise AirflowSkipException("Skipping due to soft_fail is set to True.") from error
        if self.never_fail:
            raise AirflowSkipException("Skipping due to never_fail is set to True.") from error
        raise error

    def _log_status_change(self, task: VideoTask) -> None:
        if task.status is not self._last_status:
            self._last_status = task.status
            self.log.info("Video task %s is %s.", self.video_task_id, task.status.value)

    def _poke_started_at(self, context: Context) -> float:
        """When the wait began: the first try for ``reschedule`` mode, else now."""
        if self.reschedule:
            first = context["ti"].get_first_reschedule_date(context)
            if first is not None:
                return first.timestamp()
        return time.time()


def _format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _url_host(url: str | None) -> str:
    # Only the host: the rest of a pre-signed URL is a credential.
    return (urlsplit(url).hostname or "unknown") if url else "none"
