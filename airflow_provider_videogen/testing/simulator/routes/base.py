"""What every API style's routes in the simulator provide, and the helpers they share."""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import ClientSession, web

from airflow_provider_videogen.testing._media import clip_video, video_bytes

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.contract import Simulator
    from airflow_provider_videogen.testing.simulator.records import LogEntry
    from airflow_provider_videogen.testing.simulator.state import Task

_MARKER_RE = re.compile(r"\[sim:([a-z-]+)(?:=([^\]]*))?\]")


@dataclass
class Call:
    """One authorised request to a style's routes, as the server hands it to :meth:`StyleRoutes.answer`.

    :param request: the request.
    :param target: what it does: ``create``, ``query``, ``cancel``, ``list`` or ``download``.
    :param task_id: the task it names, if any.
    :param body: its body, read.
    :param entry: its request-log entry (a create sets ``entry.task_id``).
    :param truncate: for streamed files: cut the body after that many bytes (``-1``: half); the
        server cuts or trickles a JSON answer itself.
    """

    request: web.Request
    target: str
    task_id: str | None
    body: bytes
    entry: LogEntry
    truncate: int | None = None

    @property
    def base(self) -> str:
        """The scheme and host the request came to (file URLs point there)."""
        return f"{self.request.scheme}://{self.request.host}"


class StyleRoutes:
    """The routes of one API style: which requests are its, how it answers them, how it refuses.

    A new style is a subclass in a module of its own under ``routes/``, listed in
    :data:`airflow_provider_videogen.testing.simulator.routes.ROUTES`. The server records each
    request, applies faults and checks the key (:meth:`authorised`) before :meth:`answer` runs.
    """

    #: The API style's name (the provider's connection ``api_style``).
    name: ClassVar[str]
    #: Other names ``add_task(style=...)`` accepts for it.
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The style's paths, matched at the end of the path (any prefix): group 1 is the task id (absent
    #: on the collection), an optional group 2 a sub-resource of the task (``/content``).
    route: ClassVar[re.Pattern[str]]
    #: The target of each ``(resource, method)``; resource is ``collection``, ``task`` or ``content``.
    targets: ClassVar[Mapping[tuple[str, str], str]]

    def match(self, method: str, path: str) -> tuple[str | None, str | None] | None:
        """Return ``(target, task_id)`` if the request is one of this style's, else ``None``.

        Targets are the fault targets: ``create``, ``query``, ``cancel``, ``list``, ``download``;
        ``None`` for a method the route does not allow. By default read from :attr:`route` and
        :attr:`targets`.
        """
        found = self.route.search(path)
        if found is None:
            return None
        task_id = found.group(1)
        resource = "collection" if task_id is None else "content" if found.re.groups > 1 and found.group(2) else "task"
        return self.targets.get((resource, method)), task_id

    def new_task_id(self, now: float) -> str:
        """Return a fresh task id as the service makes them."""
        raise NotImplementedError

    def upstream_id(self, task_id: str, now: float) -> str:
        """Return the id of the upstream (contents-generations) task a gateway's task wraps."""
        return new_contents_id(now)

    def generation_fields(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """Return the create body's generation fields (``resolution``, ``duration``, ``seed``...), as one mapping."""
        return body

    def authorised(self, request: web.Request, api_key: str) -> bool:
        """Whether the request carries the simulator's key (``Authorization: Bearer`` by default)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == api_key

    def unauthorised(self) -> web.Response:
        """Return the answer to a request without the right key."""
        raise NotImplementedError

    def not_allowed(self, request: web.Request) -> web.Response:
        """Return the answer to a method the route does not allow."""
        raise NotImplementedError

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        """Return the service's own error answer for an HTTP status (an ``http_error`` fault with no body)."""
        raise NotImplementedError

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        """Answer an authorised request."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<simulator routes {self.name}>"


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return a compact JSON answer."""
    return web.Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def json_body(raw: bytes) -> dict[str, Any] | None:
    """Decode a create body; ``None`` unless it is a JSON object."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def markers(text: str) -> dict[str, str]:
    """Read the ``[sim:name=value]`` markers of a prompt (how a test asks for a failure, a size...)."""
    if "[sim:" not in text:
        return {}
    return {name: value or "" for name, value in _MARKER_RE.findall(text)}


def new_contents_id(now: float) -> str:
    """Return a contents-generations task id (``cgt-<local time>-<5 characters>``)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(now))
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    return f"cgt-{stamp}-{suffix}"


def random_id(prefix: str, alphabet: str, length: int = 32) -> str:
    """Return ``prefix`` and ``length`` random characters of ``alphabet``."""
    return prefix + "".join(random.choices(alphabet, k=length))


async def write_finished_video(endpoint: str | None, uri: str, task: Task) -> None:
    """Write ``task``'s video at ``uri`` (``s3://`` or ``gs://``) in the object store at ``endpoint``, once.

    As Bedrock and Vertex write into the user's bucket. One unsigned ``PUT /<bucket>/<key>``, which both
    moto's S3 server and the GCS emulator take (the real services write with their own identity);
    ``None``: the simulator was given no such store, and nothing is written.
    """
    if not endpoint or task.params.get("object_written") == uri:
        return
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    data = clip_video() if task.clip else b"".join(video_bytes(task.id, task.video_size))
    async with ClientSession() as session, session.put(f"{endpoint.rstrip('/')}/{bucket}/{key}", data=data) as answer:
        answer.raise_for_status()
    task.params["object_written"] = uri
