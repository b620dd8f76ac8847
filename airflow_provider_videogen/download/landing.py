"""Which files of a task land where: one call lands a succeeded task's video (and last frame), and says what landed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.download._types import StoredFile
from airflow_provider_videogen.download.destination import check_file_url, last_frame_path, resolve_destination
from airflow_provider_videogen.download.downloader import DEFAULT_CHUNK_SIZE, VideoDownloader
from airflow_provider_videogen.download.inline import land_inline_file
from airflow_provider_videogen.download.stored import copy_stored_object, is_stored_object
from airflow_provider_videogen.exceptions import (
    VideoNotAvailableError,
    VideoTaskFailedError,
    VideoTaskNotReadyError,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_videogen.retry import RetryPolicy
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.styles.base import FileSource
    from airflow_provider_videogen.video_task import VideoTask


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


@dataclass(frozen=True)
class LandedFiles:
    """What landing a task produced: the task, and its video and last frame as stored.

    :param task: the video task read from the API.
    :param video: the landed video; ``None`` when there was no destination (nothing landed).
    :param last_frame: the landed last frame; ``None`` when none was asked for (or nothing landed).
    """

    task: VideoTask
    video: StoredFile | None = None
    last_frame: StoredFile | None = None

    def to_xcom(self) -> dict[str, Any]:
        """Return the operator's return value: ``task.to_dict()``, plus where the files landed when they did.

        With a landed video: ``video_path``, ``size_bytes``, ``sha256`` and ``last_frame_path``,
        ``last_frame_size_bytes``, ``last_frame_sha256`` (``None`` without a frame).
        """
        result = self.task.to_dict()
        if self.video is None:
            return result
        frame = self.last_frame
        result.update(
            video_path=self.video.uri,
            size_bytes=self.video.size_bytes,
            sha256=self.video.sha256,
            last_frame_path=frame.uri if frame else None,
            last_frame_size_bytes=frame.size_bytes if frame else None,
            last_frame_sha256=frame.sha256 if frame else None,
        )
        return result


class Landing:
    """Land a succeeded task's video (and last frame) at a destination; :meth:`cancel` stops it from ``on_kill``.

    :param destination: a URL such as ``s3://bucket/videos/``, an absolute path, or an
        ``ObjectStoragePath`` (see :func:`~.destination.resolve_destination`); ``None`` lands nothing
        (the task must still have succeeded with a video).
    :param dest_conn_id: the storage connection of the destination.
    :param include_last_frame: also land the last frame beside the video, as ``<name>.png``.
    :param overwrite: replace a destination that holds a different file instead of failing.
    :param chunk_size: bytes read and written per step of the copy.
    :param retry_policy: retries of broken downloads; by default the connection's.
    :param sweep: before each file lands, remove the temporary files a killed earlier try left for it (one
        listing of its folder per file); off where the caller swept the folder once for many landings.
    """

    def __init__(
        self,
        destination: str | ObjectStoragePath | None,
        *,
        dest_conn_id: str | None = None,
        include_last_frame: bool = False,
        overwrite: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry_policy: RetryPolicy | None = None,
        sweep: bool = True,
    ) -> None:
        self.destination = destination
        self.dest_conn_id = dest_conn_id
        self.include_last_frame = include_last_frame
        self.overwrite = overwrite
        self.chunk_size = chunk_size
        self.retry_policy = retry_policy
        self.sweep = sweep
        self._downloader: VideoDownloader | None = None

    def land(self, task: VideoTask, settings: VideoGenConnectionSettings) -> LandedFiles:
        """Land the task's files (or, without a destination, only check that it has a video).

        Every source is checked before anything is written, so a bad last frame never leaves half a result.

        :raises VideoNotAvailableError: the task has no video, or no last frame while one is asked for.
        """
        if self.destination is None:
            require_succeeded(task, settings.style.file_source(task, "video", settings.task_url(task.id)))
            return LandedFiles(task)
        downloader = VideoDownloader.for_connection(
            settings, chunk_size=self.chunk_size, retry_policy=self.retry_policy
        )
        self._downloader = downloader
        try:
            return self._land(downloader, task, settings, self.destination)
        finally:
            self._downloader = None
            downloader.close()

    def cancel(self) -> None:
        """Stop a copy in progress and remove its temporary file (safe to call from a signal handler)."""
        downloader = self._downloader
        if downloader is not None:
            downloader.cancel()

    def _land(
        self,
        downloader: VideoDownloader,
        task: VideoTask,
        settings: VideoGenConnectionSettings,
        destination: str | ObjectStoragePath,
    ) -> LandedFiles:
        """Land the video where ``destination`` says, and its last frame (when asked for) beside a downloaded one."""
        video, frame = self._sources(task, settings)
        file_name = f"{settings.style.file_stem(task.id)}.mp4"
        video_path = resolve_destination(destination, file_name=file_name, conn_id=self.dest_conn_id)
        kept = self._land_kept(task, settings, video, video_path)
        if kept is not None:
            return LandedFiles(task, kept)
        stored = downloader.fetch(
            video.url,
            video_path,
            video_task_id=task.id,
            overwrite=self.overwrite,
            authenticated=video.authenticated,
            sweep=self.sweep,
        )
        if frame is None:
            return LandedFiles(task, stored)
        stored_frame = downloader.fetch(
            frame.url,
            last_frame_path(video_path),
            video_task_id=task.id,
            kind="last_frame",
            overwrite=self.overwrite,
            authenticated=frame.authenticated,
            sweep=self.sweep,
        )
        return LandedFiles(task, stored, stored_frame)

    def _land_kept(
        self, task: VideoTask, settings: VideoGenConnectionSettings, video: FileSource, video_path: ObjectStoragePath
    ) -> StoredFile | None:
        """Land a video the service keeps (in its answer, or in the user's storage); ``None`` for one to download."""
        if video.inline_body is not None:
            # The service returned it inside its answer (Vertex): decoded as the answer streams in.
            return land_inline_file(
                settings,
                video,
                video_path,
                video_task_id=task.id,
                overwrite=self.overwrite,
                chunk_size=self.chunk_size,
                sweep=self.sweep,
            )
        if is_stored_object(video.url):
            # The service wrote it into the user's object storage (Bedrock): copied, never downloaded.
            return copy_stored_object(
                video.url,
                video_path,
                source_conn_id=video.conn_id,
                video_task_id=task.id,
                overwrite=self.overwrite,
                chunk_size=self.chunk_size,
                sweep=self.sweep,
            )
        return None

    def _sources(self, task: VideoTask, settings: VideoGenConnectionSettings) -> tuple[FileSource, FileSource | None]:
        """Return the task's video and (when asked for) last frame, both checked before anything is written."""
        style, task_url = settings.style, settings.task_url(task.id)
        video = style.file_source(task, "video", task_url)
        require_succeeded(task, video)
        assert video is not None
        # A stored object is copied with a storage connection; an inline one is read from the API.
        if not is_stored_object(video.url) and video.inline_body is None:
            check_file_url(video.url, video_task_id=task.id)
        if not self.include_last_frame:
            return video, None
        frame = style.file_source(task, "last_frame", task_url)
        if frame is None:
            raise VideoNotAvailableError(
                f"Video task {task.id} has no last frame: it was created without return_last_frame. "
                "Set include_last_frame=False, or generate with return_last_frame=True.",
                video_task_id=task.id,
            )
        check_file_url(frame.url, video_task_id=task.id)
        return video, frame
