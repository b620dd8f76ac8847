"""The ``videogen`` connection, read and checked: where the service is, with which key, how to call it."""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_videogen import _arguments, transport
from airflow_provider_videogen.cost import Prices
from airflow_provider_videogen.exceptions import VideoGenConfigurationError
from airflow_provider_videogen.fairness import in_turns
from airflow_provider_videogen.retry import RetryPolicy
from airflow_provider_videogen.styles import STYLES, get_style
from airflow_provider_videogen.styles import ApiStyle as Style
from airflow_provider_videogen.styles.base import (
    MAX_VIDEO_TASK_ID_LENGTH,
    RONGCLOUD_DATA_CENTERS,
    check_video_task_id,
)

__all__ = [
    "DATA_CENTER_URLS",
    "DEFAULT_PATH_PREFIXES",
    "MAX_VIDEO_TASK_ID_LENGTH",
    "ApiStyle",
    "SharedLookups",
    "VideoGenConnectionSettings",
    "aextra",
    "check_video_task_id",
]

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_videogen.credential import Credential
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

DATA_CENTER_URLS: dict[str, str] = {center.name: center.base_url for center in RONGCLOUD_DATA_CENTERS}
"""RongCloud's data centers (the contents-generations service); each style names its own."""
DEFAULT_PATH_PREFIXES: dict[str, str] = {name: style.default_path_prefix for name, style in STYLES.items()}
"""The ``path_prefix`` of each API style when the connection sets none."""

# A numeric extra: a count or seconds.
_N = TypeVar("_N", int, float)

#: A connection's ``api_style``: a key of :data:`~airflow_provider_videogen.styles.STYLES`.
ApiStyle = str


@dataclass(frozen=True)
class VideoGenConnectionSettings:
    """Everything a ``videogen`` connection says, checked and resolved.

    :param conn_id: the Airflow connection id it came from.
    :param base_url: scheme and host (and port) of the API, without a trailing slash.
    :param api_key: the API key (never shown in ``repr``).
    :param api_style: the API style's name, a key of :data:`~airflow_provider_videogen.styles.STYLES`.
    :param path_prefix: path before the API routes, e.g. ``/llm/v1``.
    :param timeout: seconds allowed for one HTTP request.
    :param data_center: the data center the base URL came from, or ``None`` when a host was given.
    :param retry_policy: how transient faults are retried.
    :param allow_private_file_hosts: let file downloads reach loopback, private and link-local
        addresses (extra ``allow_private_file_hosts``); by default only a connection whose own host is
        on loopback (a local simulator or gateway) may download from loopback.
    :param style_options: the extras the style reads (its ``options``, e.g. ``runway_version``), checked.
    :param coalesce_polls: waiting triggers of one event loop share their polls of this connection
        (extra ``coalesce_polls``, default true): one batch query per interval where the style has
        one, else one poll per task id. ``false``: every trigger polls its task on its own.
    :param prices: the user's prices per model (extra ``prices``; see :mod:`airflow_provider_videogen.cost`),
        which put a cost on every succeeded generation and let ``max_cost`` refuse one before it is paid.
    """

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    api_style: ApiStyle = "contents_generations"
    path_prefix: str = "/llm/v1"
    timeout: float = 30.0
    data_center: str | None = "beijing"
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    allow_private_file_hosts: bool = False
    style_options: Mapping[str, str] = field(default_factory=dict, hash=False)
    coalesce_polls: bool = True
    prices: Prices = field(default_factory=Prices, hash=False)

    @classmethod
    def from_connection_fields(
        cls,
        conn_id: str,
        *,
        host: str | None,
        password: str | None,
        port: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> VideoGenConnectionSettings:
        """Resolve the fields of a ``videogen`` connection; raise a clear error for a bad value."""
        extra = dict(extra or {})
        api_style = _choice(conn_id, "api_style", extra.get("api_style"), list(STYLES))
        api_key = _api_key(conn_id, api_style, password, extra)
        base_url, data_center = _base_url(conn_id, api_style, host, port, extra)
        path_prefix = _path_prefix(conn_id, extra.get("path_prefix"), DEFAULT_PATH_PREFIXES[api_style])
        defaults = RetryPolicy()
        retry_policy = RetryPolicy(
            max_attempts=_count(conn_id, "max_attempts", extra.get("max_attempts"), defaults.max_attempts),
            max_seconds=_seconds(conn_id, "max_retry_seconds", extra.get("max_retry_seconds"), defaults.max_seconds),
        )
        return cls(
            conn_id=conn_id,
            base_url=base_url,
            api_key=api_key,
            api_style=api_style,
            path_prefix=path_prefix,
            timeout=_seconds(conn_id, "timeout", extra.get("timeout"), 30.0),
            data_center=data_center,
            retry_policy=retry_policy,
            allow_private_file_hosts=_flag(conn_id, "allow_private_file_hosts", extra.get("allow_private_file_hosts")),
            style_options=_style_options(conn_id, get_style(api_style), extra),
            coalesce_polls=_flag(conn_id, "coalesce_polls", extra.get("coalesce_polls"), default=True),
            prices=Prices.parse(conn_id, extra.get("prices")),
        )

    @classmethod
    def from_connection(cls, conn: Connection, extra: Mapping[str, Any]) -> VideoGenConnectionSettings:
        """Resolve an Airflow connection whose extras were already decoded."""
        return cls.from_connection_fields(
            conn.conn_id, host=conn.host, password=conn.password, port=conn.port, extra=extra
        )

    @property
    def style(self) -> Style:
        """The API style the connection speaks, as its extras configure it."""
        return get_style(self.api_style).with_options(self.style_options)

    def create_url(self, request: VideoGenerationRequest) -> str:
        """URL of the create call for ``request`` (the style picks the route)."""
        return f"{self.base_url}{self.path_prefix}{self.style.create_route(request)}"

    def cancel_url(self, video_task_id: str) -> str:
        """URL of the cancel call of one video task; the id is checked by the style."""
        return f"{self.base_url}{self.path_prefix}{self.style.cancel_route(video_task_id)}"

    @property
    def tasks_url(self) -> str:
        """URL of the collection of video tasks (create and list)."""
        return f"{self.base_url}{self.path_prefix}{self.style.tasks_route}"

    def task_url(self, video_task_id: str) -> str:
        """URL of one video task; the id is checked (by the style) and stays one path segment."""
        return f"{self.base_url}{self.path_prefix}{self.style.task_route(video_task_id)}"

    def file_host_policy(self) -> transport.AddressPolicy:
        """Which addresses the files of this connection's tasks may be downloaded from.

        Loopback is allowed when the connection's own host is on loopback (a simulator or gateway on
        this machine: its files are there too); private and link-local addresses only with the
        ``allow_private_file_hosts`` extra.
        """
        if self.allow_private_file_hosts:
            return transport.AddressPolicy(allow_private=True)
        return transport.AddressPolicy(allow_loopback=transport.is_loopback_host(urlsplit(self.base_url).hostname))

    @cached_property
    def credential(self) -> Credential:
        """The API key (or borrowed cloud credentials) as the one value that carries it, made by the style (once)."""
        return self.style.credential(self.api_key, self.base_url)

    def redact(self, text: str) -> str:
        """Remove the API key, in any encoding, from a text that came from elsewhere (an error body may echo it)."""
        return self.credential.mask(text)

    def excerpt(self, text: str, limit: int = 300) -> str:
        """Mask the API key in a text from elsewhere, *then* cut it to ``limit`` characters.

        In that order: cutting first could split the key so that the mask no longer finds it,
        leaving all but its last characters in the error.
        """
        return self.redact(text)[:limit]


def _api_key(conn_id: str, api_style: ApiStyle, password: str | None, extra: Mapping[str, Any]) -> str:
    """Return the key (the password, else the ``api_key`` extra) a style that sends one needs; others refuse one."""
    api_key = (password or "").strip() or str(extra.get("api_key") or "").strip()
    if not get_style(api_style).uses_api_key:
        if api_key:
            # A key kept here would sit beside the borrowed credentials, unused, and leak more easily.
            raise VideoGenConfigurationError(
                f"Connection {conn_id!r} ({api_style}) holds an API key, but this style borrows the "
                "credentials of a cloud connection (see its extras) and never sends a key: empty the "
                "connection's password (and api_key extra)."
            )
    elif not api_key:
        raise VideoGenConfigurationError(
            f"Connection {conn_id!r} has no API key: put the key in the connection's password "
            "field (shown as 'API key' in the connection form)."
        )
    return api_key


def _base_url(
    conn_id: str, api_style: ApiStyle, host: str | None, port: int | None, extra: Mapping[str, Any]
) -> tuple[str, str | None]:
    """Return where the service is: the connection's host, else its style's data center; and that center's name."""
    if host and host.strip():
        return _base_url_from_host(conn_id, host.strip(), port), None
    centers = {center.name: center.base_url for center in get_style(api_style).data_centers}
    data_center = _choice(conn_id, "data_center", extra.get("data_center"), list(centers))
    return centers[data_center], data_center


def _style_options(conn_id: str, style: Style, extra: Mapping[str, Any]) -> dict[str, str]:
    values = {}
    for option in style.options:
        value = extra.get(option.name)
        value = option.default if value is None or str(value).strip() == "" else str(value).strip()
        if not re.fullmatch(option.pattern, value):
            raise VideoGenConfigurationError(
                f"Connection {conn_id!r} has {option.name}={value!r}, which is not a valid {option.label.lower()} "
                f"(like {option.default!r}); fix it or leave it empty for {option.default}."
            )
        values[option.name] = value
    return values


def _choice(conn_id: str, name: str, value: Any, choices: list[str]) -> str:
    if value is None or str(value).strip() == "":
        return choices[0]
    normalized = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    if normalized not in choices:
        raise VideoGenConfigurationError(
            f"Connection {conn_id!r} has {name}={value!r}; choose one of: {', '.join(choices)}."
        )
    return normalized


def _flag(conn_id: str, name: str, value: Any, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise VideoGenConfigurationError(f"Connection {conn_id!r} has {name}={value!r}; it must be true or false.")


def _seconds(conn_id: str, name: str, value: Any, default: float) -> float:
    return _numeric_extra(conn_id, name, value, default, _arguments.seconds)


def _count(conn_id: str, name: str, value: Any, default: int) -> int:
    return _numeric_extra(conn_id, name, value, default, _arguments.whole_number)


def _numeric_extra(conn_id: str, name: str, value: Any, default: _N, read: Callable[..., _N]) -> _N:
    """Read a numeric extra with ``read``; empty: the default. A wrong value names the connection and the extra.

    Extras typed in the connection form arrive as text, so text is read as the number it spells.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        return read(name, value, text_ok=True)
    except ValueError as error:
        raise VideoGenConfigurationError(
            f"Connection {conn_id!r}: {error} Fix the extra, or leave it empty for the default ({default:g})."
        ) from None


def _path_prefix(conn_id: str, value: Any, default: str) -> str:
    """Return the ``path_prefix`` extra as ``/a/b`` (``""`` for none); refuse anything but a plain path.

    It is put between the host and every route as it is, so a query, a fragment, ``.``/``..``
    segments, ``%`` escapes or a backslash could send the key to another endpoint than the API's.
    """
    text = default if value is None else str(value)
    problem = None
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in text):
        problem = "it contains a control character"
    else:
        text = text.strip()
        segments = set(text.split("/"))
        if "://" in text or text.startswith("//"):
            problem = "it is a full URL; put the scheme and host in the connection's host field"
        elif any(character.isspace() for character in text):
            problem = "it contains white space"
        elif bad := sorted(set(text) & set("?#%\\")):
            problem = f"it contains {', '.join(repr(character) for character in bad)}"
        elif dots := [dots for dots in ("..", ".") if dots in segments]:
            problem = f"it has a {dots[0]!r} segment"
    if problem:
        raise VideoGenConfigurationError(
            f"Connection {conn_id!r} has path_prefix={value!r}, which is not a plain path: {problem}. "
            f"Use a path such as '/llm/v1' or '/api/v3', or leave it empty for {default!r}."
        )
    return "/" + text.strip("/") if text.strip("/") else ""


def _base_url_from_host(conn_id: str, host: str, port: int | None) -> str:
    if "://" not in host:
        host = f"https://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise VideoGenConfigurationError(
            f"Connection {conn_id!r} has host {host!r}, which is not an http(s) base URL such as "
            "'https://ai.rong-api.com' or 'http://127.0.0.1:9000'. Leave it empty to use the data center."
        )
    netloc = parts.netloc.rpartition("@")[2]  # credentials in a base URL would end up in logs
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


async def aextra(conn: Connection) -> dict[str, Any]:
    """Decode the connection's extras without blocking (Airflow 3.3 adds ``aextra_dejson``)."""
    aextra_dejson = getattr(conn, "aextra_dejson", None)
    if aextra_dejson is not None:
        return await aextra_dejson()
    # Older versions only offer the sync property, which masks secrets through a blocking call:
    # decode the JSON directly (this connection keeps no secret in its extras).
    try:
        extra = json.loads(conn.extra) if conn.extra else {}
    except ValueError:
        raise VideoGenConfigurationError(
            f"Connection {conn.conn_id!r} has extras that are not valid JSON; fix them in the connection."
        ) from None
    return extra if isinstance(extra, dict) else {}


class SharedLookups:
    """The connection lookups under way in each event loop, shared by the hooks that ask meanwhile.

    A lookup is only shared while it runs: a hook that asks after it finished makes its own, so it
    sees the connection as it is then, exactly as without sharing. Its result is handed to the hooks
    that waited a slice per turn of the loop (thousands of triggers starting together wait on one).
    """

    _by_loop: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[str, list[asyncio.Future[VideoGenConnectionSettings]]]
    ] = weakref.WeakKeyDictionary()
    #: The lookups running (the loop holds tasks weakly).
    _running: set[asyncio.Task[None]] = set()

    @classmethod
    async def resolve(
        cls, conn_id: str, lookup: Callable[[], Coroutine[Any, Any, VideoGenConnectionSettings]]
    ) -> VideoGenConnectionSettings:
        """Return the settings of ``conn_id``: from the lookup under way in this loop, else from a new ``lookup()``."""
        loop = asyncio.get_running_loop()
        under_way = cls._by_loop.setdefault(loop, {})
        waiters = under_way.get(conn_id)
        if waiters is None:
            waiters = under_way[conn_id] = []
            task = loop.create_task(cls._look_up(under_way, conn_id, waiters, lookup()))
            cls._running.add(task)
            task.add_done_callback(cls._running.discard)
        # A future per hook: one waiting hook being cancelled does not cancel the lookup for the others.
        waiter: asyncio.Future[VideoGenConnectionSettings] = loop.create_future()
        waiters.append(waiter)
        try:
            return await waiter
        except Exception as error:
            # The same error reaches every hook that waited: do not let each raise add to one traceback.
            raise error.with_traceback(None) from None

    @staticmethod
    async def _look_up(
        under_way: dict[str, list[asyncio.Future[VideoGenConnectionSettings]]],
        conn_id: str,
        waiters: list[asyncio.Future[VideoGenConnectionSettings]],
        lookup: Coroutine[Any, Any, VideoGenConnectionSettings],
    ) -> None:
        settings: VideoGenConnectionSettings | None = None
        failure: BaseException | None = None
        try:
            settings = await lookup
        except asyncio.CancelledError:
            for waiter in waiters:
                waiter.cancel()  # the loop is closing
            raise
        except Exception as error:
            failure = error
        finally:
            if under_way.get(conn_id) is waiters:
                del under_way[conn_id]  # from now on a hook that asks makes its own lookup
        async for waiter in in_turns(waiters):
            if waiter.done():
                continue  # its hook was cancelled meanwhile
            if failure is not None:
                waiter.set_exception(failure)
            else:
                waiter.set_result(settings)  # type: ignore[arg-type]
