"""How large the shared polls' list calls of one connection may be: how many ids its host takes, and how long a URL.

A list call asks for up to a page of ids (the style's ``batch_query_size``). A host that refuses a
long request line (400, 413, 414 or 431, from the server or a proxy) is sent URLs within
:data:`SAFE_URL_LENGTH` from then on; one that refuses a call of some ids (or answers it with more
than an answer may hold) is sent half as many, down to one; one that refuses even one id does not
serve the list call, and its tasks are polled one by one. What a host takes is remembered for the
process, per connection (its id and task URL), and the log says each change. Nothing here sends a
request: :mod:`~airflow_provider_videogen.shared_polls` asks, and tells this what the host answered.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote_plus, urlencode

from airflow_provider_videogen.transport import MAX_ANSWER_BYTES

if TYPE_CHECKING:
    from airflow_provider_videogen.exceptions import VideoGenAPIError
    from airflow_provider_videogen.settings import VideoGenConnectionSettings

log = logging.getLogger("airflow_provider_videogen.shared_polls")  # the shared polls' log says each change

#: Statuses with which servers and proxies refuse a request line longer than theirs: 400 or 414 (nginx,
#: Apache, aiohttp), 431 (Node, Go), 413 (some proxies).
LONG_URL_STATUSES = frozenset({400, 413, 414, 431})

#: A URL length every common HTTP server takes (their request-line limits are about 8 KiB: nginx,
#: Apache, aiohttp). 500 ids do not fit in it: a host that refuses the longer URL is sent shorter ones.
SAFE_URL_LENGTH = 8000


class ListCallSizes:
    """The size of one connection's list calls, as its host has shown it takes them (see the module's description).

    :param settings: the connection (its style's list call and page size, its id and task URL).
    """

    #: Connections (id and task URL) whose host refused the batch query, remembered for the process.
    refused: ClassVar[set[tuple[str, str]]] = set()
    #: Connections whose host refused a long list URL: their calls stay within a safe length since.
    url_limited: ClassVar[set[tuple[str, str]]] = set()
    #: Connections whose host refused a list call of more ids (or answered it past the size limit):
    #: the most ids their calls ask for since.
    ids_limited: ClassVar[dict[tuple[str, str], int]] = {}

    def __init__(self, settings: VideoGenConnectionSettings) -> None:
        self.settings = settings
        # Made once: the polls ask for it on every poll.
        self._key = (settings.conn_id, settings.tasks_url)

    @classmethod
    def forget(cls) -> None:
        """Forget which hosts refused the list call or its long URLs (tests start each from scratch)."""
        cls.refused.clear()
        cls.url_limited.clear()
        cls.ids_limited.clear()

    @property
    def batching(self) -> bool:
        """Whether polls become list calls (the style has one and this host has not refused it)."""
        return self.settings.style.batch_query_size > 0 and self._key not in self.refused

    @property
    def ids_per_call(self) -> int:
        """The most ids one list call asks for: a page, or fewer once the host asked for fewer."""
        page = self.settings.style.batch_query_size
        limit = self.ids_limited.get(self._key)
        return page if limit is None else min(page, limit)

    @property
    def urls_limited(self) -> bool:
        """Whether this host wants list URLs within :data:`SAFE_URL_LENGTH`."""
        return self._key in self.url_limited

    def too_long(self, ids_length: int) -> bool:
        """Whether a list URL whose ids add ``ids_length`` characters is past the safe length."""
        return self._url_base_length + ids_length > SAFE_URL_LENGTH

    def url_cost(self, video_task_id: str) -> int:
        """Return the characters ``video_task_id`` adds to the list URL."""
        return self._url_id_overhead + len(quote_plus(video_task_id))

    def list_url(self, video_task_ids: list[str]) -> str:
        """Return the list call's URL for these ids."""
        route, params = self.settings.style.batch_query(video_task_ids)
        return f"{self.settings.base_url}{self.settings.path_prefix}{route}?{urlencode(params)}"

    def chunks(self, video_task_ids: list[str]) -> list[list[str]]:
        """Split the ids into calls of a page at most, and within a safe URL length once the host asked for it."""
        size = self.ids_per_call
        if not self.urls_limited:
            return [video_task_ids[start : start + size] for start in range(0, len(video_task_ids), size)]
        chunks: list[list[str]] = [[]]
        length = 0
        for task_id in video_task_ids:
            cost = self.url_cost(task_id)
            if chunks[-1] and (len(chunks[-1]) >= size or self.too_long(length + cost)):
                chunks.append([])
                length = 0
            chunks[-1].append(task_id)
            length += cost
        return chunks

    @staticmethod
    def refused_for_its_length(error: VideoGenAPIError, url: str) -> bool:
        """Whether a refusal of the list call at ``url`` may be one of its length: shorter URLs may be taken."""
        return error.http_status in LONG_URL_STATUSES and len(url) > SAFE_URL_LENGTH

    def halved(self, asked: int) -> int:
        """Return how many ids the next call asks for after a call of ``asked`` ids was refused (0: none is left)."""
        return min(asked // 2, self.ids_per_call)

    def limit_urls(self, error: VideoGenAPIError) -> None:
        """Remember that the host refuses long list URLs (said once)."""
        if self._key in self.url_limited:
            return  # another call of the same round, sent before the first one's answer came
        self.url_limited.add(self._key)
        log.warning(
            "The service at %s refused a list call of %s ids with a long URL (HTTP %s); its list calls of "
            "connection %r ask for as many ids as fit in %d characters from now on.",
            self.settings.base_url,
            self.settings.style.batch_query_size,
            error.http_status,
            self.settings.conn_id,
            SAFE_URL_LENGTH,
        )

    def limit_ids(self, size: int, asked: int, error: VideoGenAPIError) -> None:
        """Remember that the host takes list calls of ``size`` ids at most (said when it goes down)."""
        limit = self.ids_limited.get(self._key)
        if limit is not None and limit <= size:
            return  # another call of the same round settled on as few already
        self.ids_limited[self._key] = size
        if error.http_status is None:  # the client's only refusal without a status: an answer too large to read
            what = f"answered a list call of {asked} ids with more than the {MAX_ANSWER_BYTES} bytes an answer may hold"
        else:
            what = f"refused a list call of {asked} ids (HTTP {error.http_status})"
        log.warning(
            "The service at %s %s; list calls of connection %r ask for at most %d ids from now on.",
            self.settings.base_url,
            what,
            self.settings.conn_id,
            size,
        )

    def refuse(self, error: VideoGenAPIError) -> None:
        """Remember that the host does not serve the list call: its tasks are polled one by one (said once)."""
        if self._key in self.refused:
            return
        self.refused.add(self._key)
        log.warning(
            "The service at %s does not serve the list call that reads many video tasks at once (%s); "
            "polling each task of connection %r on its own from now on.",
            self.settings.base_url,
            f"HTTP {error.http_status}" if error.http_status is not None else "its answer for one id is too large",
            self.settings.conn_id,
        )

    @functools.cached_property
    def _url_base_length(self) -> int:
        """The list URL's length without ids (the connection and style never change for these polls)."""
        return len(self.list_url([]))

    @functools.cached_property
    def _url_id_overhead(self) -> int:
        """What one id adds to the list URL beyond its own quoted length (measured once on a probe id)."""
        return len(self.list_url(["x"])) - self._url_base_length - 1
