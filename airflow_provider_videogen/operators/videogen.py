"""Operators of the VideoGen provider: thin wrappers that build the hook, make the call and decide."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_videogen.exceptions import VideoDownloadError
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.video_download import (
    DEFAULT_CHUNK_SIZE,
    VideoDownloader,
    check_file_url,
    require_succeeded,
    resolve_destination,
)

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
    :mod:`airflow_provider_videogen.video_download` for the details per backend.

    The video task must have succeeded. A queued or running task raises
    :class:`~airflow_provider_videogen.video_download.VideoTaskNotReadyError` (put a
    ``VideoTaskSensor`` before this operator); a failed, cancelled or expired one raises
    :class:`~airflow_provider_videogen.video_download.VideoTaskFailedError` with the API's error code
    and message, and a refused (expired) file URL raises
    :class:`~airflow_provider_videogen.video_download.VideoURLExpiredError`; neither of the last two
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
        ``s3://bucket/videos/{{ ds }}/`` or ``file:///data/videos/x.mp4``, or an ``ObjectStoragePath``.
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
    """

    template_fields: Sequence[str] = ("video_task_id", "destination", "videogen_conn_id", "dest_conn_id")
    ui_color = "#d8e8f8"

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
        self.chunk_size = chunk_size
        self.http_retry_policy = http_retry_policy
        self._downloader: VideoDownloader | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        """Fetch the task; copy its files when a destination is set; return the result described above."""
        hook = VideoGenHook(self.videogen_conn_id, retry_policy=self.http_retry_policy)
        task = hook.get_task(self.video_task_id)
        require_succeeded(task)
        result = task.to_dict()
        if self.destination is None:
            self.log.info("Video task %s succeeded; returning its metadata (no destination, nothing copied).", task.id)
            return result

        # Check every URL before writing anything, so a bad last frame never leaves half a result.
        video_url = check_file_url(str(task.video_url), video_task_id=task.id)
        frame_url = None
        if self.include_last_frame:
            if not task.last_frame_url:
                raise VideoDownloadError(
                    f"Video task {task.id} has no last frame: it was created without return_last_frame. "
                    "Set include_last_frame=False, or generate with return_last_frame=True.",
                    video_task_id=task.id,
                )
            frame_url = check_file_url(task.last_frame_url, video_task_id=task.id)

        video_path = resolve_destination(
            self.destination, file_name=f"{self.video_task_id}.mp4", conn_id=self.dest_conn_id
        )
        frame_path = _last_frame_path(video_path) if frame_url else None

        downloader = VideoDownloader(
            chunk_size=self.chunk_size,
            retry_policy=self.http_retry_policy or hook.settings.retry_policy,
        )
        self._downloader = downloader
        try:
            video = downloader.fetch(video_url, video_path, video_task_id=task.id, overwrite=self.overwrite)
            frame = (
                downloader.fetch(
                    frame_url, frame_path, video_task_id=task.id, kind="last_frame", overwrite=self.overwrite
                )
                if frame_url and frame_path is not None
                else None
            )
        finally:
            self._downloader = None
            downloader.close()

        result.update(
            video_path=video.uri,
            size_bytes=video.size_bytes,
            sha256=video.sha256,
            last_frame_path=frame.uri if frame else None,
            last_frame_size_bytes=frame.size_bytes if frame else None,
            last_frame_sha256=frame.sha256 if frame else None,
        )
        return result

    def on_kill(self) -> None:
        """Stop a copy in progress and remove its temporary file."""
        downloader = self._downloader
        if downloader is not None:
            downloader.cancel()


def _last_frame_path(video_path: ObjectStoragePath) -> ObjectStoragePath:
    """``<name>.png`` beside the video (``x.mp4`` -> ``x.png``)."""
    frame = video_path.with_name(f"{video_path.stem or video_path.name}.png")
    if frame.path == video_path.path:
        raise VideoDownloadError(
            f"The video destination {video_path.name!r} ends in .png, where its last frame would go: "
            "name the video file .mp4."
        )
    return frame
