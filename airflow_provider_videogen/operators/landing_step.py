"""The landing step: land a succeeded task's files, link the landed video, describe it in asset events and lineage.

One step for both operators that land: ``FetchVideoOperator`` (a video generated elsewhere, or by an
upstream task) and ``GenerateVideoOperator`` with a ``destination`` (the task that waited lands the
video itself). Both therefore give the same guarantees (streamed, verified, atomic, idempotent on a
retry: see :mod:`airflow_provider_videogen.download`) and the same return keys, links and events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from airflow_provider_videogen.download import Landing, check_destination
from airflow_provider_videogen.download.destination import storage_uri
from airflow_provider_videogen.exceptions import VideoDestinationError
from airflow_provider_videogen.links import LandedVideoLink, landed_video_url, note_link

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context, ObjectStoragePath

    from airflow_provider_videogen.retry import RetryPolicy
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask


class LandingFields(Protocol):
    """The landing parameters of an operator that lands: ``FetchVideoOperator``'s, by the same names."""

    destination: str | ObjectStoragePath | None
    dest_conn_id: str | None
    include_last_frame: bool
    overwrite: bool
    chunk_size: int
    http_retry_policy: RetryPolicy | None


class LandingStep:
    """The landing of one operator: the copy under way (for ``on_kill``) and what landed (for lineage).

    The landing parameters are the operator's own (templated) fields, read when :meth:`land` runs,
    once Airflow has rendered them; the step keeps only what a try did.
    """

    def __init__(self) -> None:
        self._landing: Landing | None = None
        #: The connection's base URL, once a task was landed (names the generation in lineage).
        self.base_url: str | None = None
        #: What landed in this try (the return value); ``None`` when nothing did.
        self.landed: dict[str, Any] | None = None

    def land(
        self,
        operator: BaseOperator,
        context: Context,
        task: VideoTask,
        settings: VideoGenConnectionSettings,
        *,
        destination: str | ObjectStoragePath | None,
        dest_conn_id: str | None,
        include_last_frame: bool,
        overwrite: bool,
        chunk_size: int,
        retry_policy: RetryPolicy | None,
    ) -> dict[str, Any]:
        """Land ``task``'s files at ``destination``; note the landed-video link and the outlets' asset events.

        The keyword arguments are ``FetchVideoOperator``'s parameters of the same names (see there).
        Returns ``task.to_dict()`` plus, when something landed, ``video_path``, ``size_bytes``,
        ``sha256`` and the ``last_frame_*`` keys (see :meth:`~airflow_provider_videogen.download.LandedFiles.to_xcom`).
        Without a destination nothing is copied: the task must still have succeeded with a video.
        """
        self.base_url = settings.base_url
        self._landing = Landing(
            destination,
            dest_conn_id=dest_conn_id,
            include_last_frame=include_last_frame,
            overwrite=overwrite,
            chunk_size=chunk_size,
            retry_policy=retry_policy,
        )
        landed = self._landing.land(task, settings).to_xcom()
        if destination is None:
            return landed
        self.landed = landed
        note_link(operator, LandedVideoLink, landed_video_url(landed["video_path"], dest_conn_id))
        emit_asset_events(operator, context, landed)
        return landed

    def land_as_configured(
        self, operator: BaseOperator, context: Context, task: VideoTask, settings: VideoGenConnectionSettings
    ) -> dict[str, Any]:
        """Land ``task``'s files as :meth:`land` does, with the (rendered) landing parameters ``operator`` holds.

        :param operator: an operator with :class:`LandingFields` (``destination``, ``dest_conn_id``,
            ``include_last_frame``, ``overwrite``, ``chunk_size``, ``http_retry_policy``).
        """
        fields = cast("LandingFields", operator)
        return self.land(
            operator,
            context,
            task,
            settings,
            destination=fields.destination,
            dest_conn_id=fields.dest_conn_id,
            include_last_frame=fields.include_last_frame,
            overwrite=fields.overwrite,
            chunk_size=fields.chunk_size,
            retry_policy=fields.http_retry_policy,
        )

    def cancel(self) -> None:
        """Stop a copy in progress and remove its temporary file (from the operator's ``on_kill``)."""
        if self._landing is not None:
            self._landing.cancel()

    def lineage(self, *, generated: bool) -> Any:
        """OpenLineage of what landed: the generation (an input, or an output when ``generated``) and the files.

        :param generated: the operator made the generation itself (``GenerateVideoOperator``), rather
            than read one made before (``FetchVideoOperator``).
        """
        from airflow_provider_videogen.lineage import fetch_lineage, generate_and_land_lineage

        lineage = generate_and_land_lineage if generated else fetch_lineage
        return lineage(self.base_url or "", self.landed)

    def generation_lineage(self, base_url: str, finished: Mapping[str, Any] | None) -> Any:
        """OpenLineage of a generation the operator made: with the files it landed, else the generation alone.

        :param base_url: the connection's base URL, which names the generation.
        :param finished: the finished task (or only its id), ``None`` before the generation exists.
        """
        if self.landed is not None:
            return self.lineage(generated=True)
        from airflow_provider_videogen.lineage import generation_lineage

        return generation_lineage(base_url, finished)


def refuse_an_unusable_destination(destination: str | ObjectStoragePath | None) -> None:
    """Refuse a (rendered) destination no file could land in, before a generation is paid for.

    The same rules as the landing itself (see :func:`~airflow_provider_videogen.download.check_destination`),
    checked without touching the storage: a generation whose video could never land is not submitted.

    :raises VideoDestinationError: the destination is empty, relative or malformed; not retried.
    """
    if destination is None:
        return
    from airflow.sdk import ObjectStoragePath

    text = storage_uri(destination) if isinstance(destination, ObjectStoragePath) else str(destination).strip()
    if not text:
        raise VideoDestinationError(
            "The destination is empty (did its template render to nothing?): pass an absolute folder URL such as "
            "s3://bucket/videos/ or file:///data/videos/, or None to land nothing."
        )
    check_destination(text)


#: The keys of the landed result that each asset event's ``extra`` carries.
ASSET_EXTRA_KEYS = (
    "video_task_id",
    "model",
    "video_path",
    "sha256",
    "size_bytes",
    "duration",
    "last_frame_path",
    "cost",
)


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
