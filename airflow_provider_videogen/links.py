"""Extra links of the operators' task pages: the video service's console, and the landed video.

Airflow asks a link for its URL on the worker when the task ends (and again after a deferral) and
keeps the answer in XCom, where the UI reads it. The operators note the URL while they run
(:func:`note_link`), so a link is only ever what the task itself saw; a task that never got as far
shows no link. A link is a plain page URL: never the API key, never a pre-signed file URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow_provider_videogen.hooks.videogen import VideoGenHook

# Where the operators keep the URLs of their links during a try.
_LINKS_ATTRIBUTE = "_videogen_links"


def note_link(operator: Any, link: type[BaseOperatorLink], url: str | None) -> None:
    """Remember ``url`` as the target of ``link`` on this task (``None``: no link)."""
    links = operator.__dict__.setdefault(_LINKS_ATTRIBUTE, {})
    links[link.__name__] = url


def note_console_link(operator: Any, hook: VideoGenHook, video_task_id: str) -> None:
    """Remember the service console page of ``video_task_id``, if the connection's API style has one.

    A link never fails a task: a connection that cannot be read (the task fails for that elsewhere, or
    did not need it) just gives no link.
    """
    try:
        settings = hook.settings
    except Exception:
        url = None
    else:
        url = settings.style.console_url(settings.base_url, video_task_id)
    note_link(operator, VideoServiceConsoleLink, url)


class _NotedLink(BaseOperatorLink):
    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """Return the URL the task noted while it ran, or ``""`` (no link)."""
        return str(getattr(operator, _LINKS_ATTRIBUTE, {}).get(type(self).__name__) or "")


class VideoServiceConsoleLink(_NotedLink):
    """The video service's own console page for the task's generations, where the API style has one.

    Only the ``video_generations`` style (new-api gateways) has one: the gateway's task log at
    ``<base URL>/console/task``. RongCloud, Ark and the ``/v1/videos`` gateways have no page for a
    task that is known to be stable, so their tasks show no console link.
    """

    name = "Video service console"


class LandedVideoLink(_NotedLink):
    """The landed video in its storage's web console, where the destination has one (S3: the AWS console)."""

    name = "Landed video"


def s3_console_url(uri: str) -> str | None:
    """Return the AWS console page of an ``s3://bucket/key`` object (no credentials, nothing signed), else ``None``."""
    parts = urlsplit(uri)
    if parts.scheme not in ("s3", "s3a") or not parts.netloc or not parts.path.strip("/"):
        return None
    key = parts.path.lstrip("/")
    return f"https://s3.console.aws.amazon.com/s3/object/{quote(parts.netloc, safe='')}?prefix={quote(key, safe='/')}"


def landed_video_url(uri: str, dest_conn_id: str | None) -> str | None:
    """Return a browsable page of a landed file: S3 objects on AWS itself (not S3-compatible stores)."""
    url = s3_console_url(uri)
    if url is None or not dest_conn_id:
        return url
    try:
        from airflow.sdk import BaseHook

        extra = BaseHook.get_connection(dest_conn_id).extra_dejson
    except Exception:
        return url
    # An endpoint_url means another S3-compatible store (MinIO, a local server...): the AWS console has none of it.
    return None if extra.get("endpoint_url") or extra.get("host") else url
