"""What every API style's routes in the simulator provide, and the helpers they share."""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.server import Simulator
    from airflow_provider_videogen.testing.simulator.state import LogEntry

_MARKER_RE = re.compile(r"\[sim:([a-z-]+)(?:=([^\]]*))?\]")


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

    def match(self, method: str, path: str) -> tuple[str | None, str | None] | None:
        """Return ``(target, task_id)`` if the request is one of this style's, else ``None``.

        Targets are the fault targets: ``create``, ``query``, ``cancel``, ``list``, ``download``;
        ``None`` for a method the route does not allow.
        """
        raise NotImplementedError

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

    async def answer(
        self,
        sim: Simulator,
        request: web.Request,
        target: str,
        task_id: str | None,
        body: bytes,
        entry: LogEntry,
        truncate: int | None,
    ) -> web.StreamResponse:
        """Answer an authorised request.

        ``truncate`` is for streamed files only: the server cuts or trickles a JSON answer itself.
        """
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
