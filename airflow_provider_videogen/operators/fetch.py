"""``FetchVideoOperator``: read a succeeded video task and land its files; the asset events of what landed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_videogen import _arguments
from airflow_provider_videogen.download import DEFAULT_CHUNK_SIZE
from airflow_provider_videogen.events import without_file_urls
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.links import LandedVideoLink
from airflow_provider_videogen.operators.landing_step import LandingStep

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath


class FetchVideoOperator(BaseOperator):
    """Read a succeeded video task; return its metadata, or land its video in object storage.

    Video URLs expire a while after generation (a day or two on most services; each style's
    ``url_lifetime_hours``, listed in the docs' style table): landing the file is what makes a generation
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
    :param include_urls: keep the file URLs in the return value. ``video_url`` and ``last_frame_url``
        are signed, time-limited URLs: anyone who can read the XCom can download the video until
        they expire. ``False`` returns them as ``None`` (and leaves out the ``raw`` answer, which
        holds them too); ``video_path`` and the rest are kept.

    **Assets.** The videos this task lands can drive other DAGs: declare them in ``outlets``. With a
    fixed destination, ``outlets=[Asset("s3://bucket/videos/")]`` works as for any task, and its
    event's ``extra`` describes the landed video. With a templated or mapped destination, use an
    alias, ``outlets=[AssetAlias("videogen_videos")]``: every landed video becomes an event of the
    asset named by its own URI (``s3://bucket/videos/2026-01-01/<id>.mp4``), added through the
    alias, and a DAG with ``schedule=AssetAlias("videogen_videos")`` runs when videos arrive. Each
    event's ``extra`` holds ``video_task_id``, ``model``, ``video_path``, ``sha256``, ``size_bytes``,
    ``duration``, ``last_frame_path`` and ``cost`` (see :func:`asset_event_extra`; ``None`` without a
    ``prices`` extra on the connection). Without ``destination``
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
        include_urls: bool = True,
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
        self.include_urls = include_urls
        self._landing_step = LandingStep()

    def execute(self, context: Context) -> dict[str, Any]:
        """Fetch the task; copy its files when a destination is set; return the result described above."""
        hook = VideoGenHook(self.videogen_conn_id, retry_policy=self.http_retry_policy)
        task = hook.get_task(self.video_task_id)
        landed = self._landing_step.land_as_configured(self, context, task, hook.settings)
        if task.cost is not None:
            self.log.info("Video task %s cost %s.", task.id, task.cost)
        if not self.include_urls:
            landed = without_file_urls(landed)
        if self.destination is None:
            self.log.info("Video task %s succeeded; returning its metadata (no destination, nothing copied).", task.id)
        return landed

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the generation read (input), the video and last frame landed (outputs), the run facet.

        Called by Airflow's OpenLineage provider when it is installed; the provider needs nothing otherwise.
        """
        return self._landing_step.lineage(generated=False)

    def on_kill(self) -> None:
        """Stop a copy in progress and remove its temporary file."""
        self._landing_step.cancel()
