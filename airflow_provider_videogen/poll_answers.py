"""The answers to the polls of one shared request: list calls where the style has a batch query, else a GET per task.

:mod:`~airflow_provider_videogen.shared_polls` gathers the polls of the waiting triggers into
rounds and says when a round's request goes out; this module makes that request and settles each
poll with its task or its error (see that module's description for the rules: smaller list calls
while a host refuses long ones, a task missing from a list answer read on its own, a refused key
failing every poll of the call).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.answers import read_list_answer, read_task_payload
from airflow_provider_videogen.client import ApiRequest, PollAnswer, VideoGenClient, query
from airflow_provider_videogen.exceptions import VideoGenAPIError, VideoGenAuthError, VideoGenError
from airflow_provider_videogen.fairness import in_turns
from airflow_provider_videogen.list_call_sizes import ListCallSizes

if TYPE_CHECKING:
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

__all__ = ["PollAnswers", "Waiting"]

log = logging.getLogger("airflow_provider_videogen.shared_polls")  # the shared polls' log, as before the split

#: The polls of one request: a future per poll (not per id) for each task id asked about.
Waiting = dict[str, list["asyncio.Future[PollAnswer]"]]


class PollAnswers:
    """Answer the polls of the shared requests of one connection in one event loop.

    :param settings: the connection (the requests follow its settings: a trigger's, one attempt per poll).
    """

    def __init__(self, settings: VideoGenConnectionSettings) -> None:
        self.settings = settings
        # How large a list call this connection's host takes (ids, URL length), learnt from its refusals.
        self.sizes = ListCallSizes(settings)
        self._client: VideoGenClient | None = None
        # The task last read for each id a trigger still holds (as its last state): reused while unchanged.
        self._recent: weakref.WeakValueDictionary[str, VideoTask] = weakref.WeakValueDictionary()
        # One list answer is handed out at a time, a slice per turn of the loop.
        self._handing_out = asyncio.Lock()

    @property
    def batching(self) -> bool:
        """Whether polls become batch queries (the style has one and this host has not refused it)."""
        return self.sizes.batching

    async def answer(self, waiting: Waiting) -> None:
        """Settle every poll of ``waiting`` with its task or its error, in list calls where the style batches."""
        if self.batching:
            await self._answer_batch(waiting)
        else:
            await self._answer_each(waiting)

    async def aclose(self) -> None:
        """Close the requests' client (its share of the loop's HTTP session), if a request made one."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _answer_batch(self, waiting: Waiting) -> None:
        if not self.batching:  # the host refused the list call meanwhile, even for one id
            await self._answer_each(waiting)
            return
        chunks = self.sizes.chunks(list(waiting))
        await asyncio.gather(*(self._answer_chunk({task_id: waiting[task_id] for task_id in c}) for c in chunks))

    async def _answer_chunk(self, waiting: Waiting) -> None:
        refusal = await self._ask(waiting)
        if refusal is not None:
            await self._shrink(waiting, refusal)

    async def _ask(self, waiting: Waiting) -> VideoGenAPIError | None:
        """Answer the polls with one list call; return its refusal instead if a smaller call may be taken."""
        url = self.sizes.list_url(list(waiting))
        try:
            found = await self._batch_query(url, list(waiting))
        except VideoGenAPIError as error:
            if _about_the_key(error):
                _fail(waiting, error)  # every task of the connection would be refused alike
            elif self.sizes.refused_for_its_length(error, url):
                self.sizes.limit_urls(error)
                await self._answer_batch(waiting)  # the same ids again, in calls with shorter URLs
            else:
                return error
            return None
        except Exception as error:
            _fail(waiting, error)
            return None
        async with self._handing_out:
            async for task_id, item in in_turns(list(found.items())):
                task = self._read(item, task_id)
                if task is None:
                    del found[task_id]  # an item that does not read as this task: it is read on its own
                else:
                    _settle(waiting[task_id], PollAnswer(task, None))
        # Absence is never "not found": a task the answer left out is read on its own.
        missing = {task_id: futures for task_id, futures in waiting.items() if task_id not in found}
        if missing:
            await self._answer_each(missing)
        return None

    async def _shrink(self, waiting: Waiting, error: VideoGenAPIError) -> None:
        """Ask again for the ids of a list call refused (or answered too large) in calls of half as many ids.

        Only the first half goes, halved again while it is refused; once one is answered, the other ids
        go at that size together. A host refusing every size costs a call per halving (8 from 500 ids),
        not one per id, and a poll waits for one call per halving, not two. A call refused for one id
        means the host does not serve the list call: each task is then read on its own.
        """
        task_ids = list(waiting)
        probe = task_ids
        refusal: VideoGenAPIError | None = error
        while refusal is not None:
            size = self.sizes.halved(len(probe))
            if size < 1:
                self.sizes.refuse(refusal)
                probe = []  # not answered: read on its own below, with the rest
                break
            self.sizes.limit_ids(size, len(probe), refusal)
            probe = probe[:size]
            refusal = await self._ask({task_id: waiting[task_id] for task_id in probe})
        rest = task_ids[len(probe) :]
        if rest:
            await self._answer_batch({task_id: waiting[task_id] for task_id in rest})

    async def _answer_each(self, waiting: Waiting) -> None:
        """Read each task with a call of its own."""
        await asyncio.gather(*(self._answer_one(task_id, futures) for task_id, futures in waiting.items()))

    async def _answer_one(self, video_task_id: str, futures: list[asyncio.Future[PollAnswer]]) -> None:
        try:
            answer = await self._requests_client().asend(query(self.settings, video_task_id))
        except Exception as error:
            _fail({video_task_id: futures}, error)
        else:
            _settle(futures, PollAnswer(answer.value, answer.poll_hint))

    def _read(self, item: Mapping[str, Any], video_task_id: str) -> VideoTask | None:
        """Read the list answer's item as the task ``video_task_id`` (``None`` if it does not read as it)."""
        recent = self._recent.get(video_task_id)
        if recent is not None and recent.raw == item:
            return recent  # unchanged since the last answer: the same task
        try:
            task = read_task_payload(item, self.settings, video_task_id)
        except VideoGenError:
            return None
        self._recent[video_task_id] = task
        return task

    async def _batch_query(self, url: str, video_task_ids: list[str]) -> dict[str, Mapping[str, Any]]:
        """Return the list call's items of the ids asked for, by id (read as tasks later, a slice at a time)."""
        answer = await self._requests_client().asend(ApiRequest("GET", url, "list", self.settings))
        return read_list_answer(answer.value, self.settings, video_task_ids)

    def _requests_client(self) -> VideoGenClient:
        # The requests follow the settings of the first sharer (a trigger's: one attempt per poll).
        if self._client is None:
            self._client = VideoGenClient(log)
        return self._client


def _about_the_key(error: VideoGenAPIError) -> bool:
    """Whether a refused list call refused the API key: a 401, or a 403 with the API's own error.

    A 403 without one (a proxy's or a firewall's: a long URL, a route closed to the key) is about the call.
    """
    return isinstance(error, VideoGenAuthError) and (error.http_status != 403 or error.api_code is not None)


def _settle(futures: list[asyncio.Future[PollAnswer]], answer: PollAnswer) -> None:
    for future in futures:
        if not future.done():  # a poll whose trigger was cancelled meanwhile
            future.set_result(answer)


def _fail(waiting: Waiting, error: BaseException) -> None:
    for futures in waiting.values():
        for future in futures:
            if not future.done():
                future.set_exception(error)
