"""Polls shared by the waiting triggers of one event loop: one request answers every trigger that asks meanwhile.

Thousands of triggers waiting on one connection would each make one request per poll interval; the
service counts them against a rate limit of a few hundred requests a minute. Here the triggers of
one event loop that poll tasks of one connection share their requests:

- where the API style has a batch query (the contents-generations list call with ``filter.task_ids``
  repeated, up to 500 ids), the polls asked for within a moment of each other become one such call
  (more ids: more calls); a task missing from its answer is read with a call of its own, since
  absence is never "not found", and so is a task the answer lists twice (it contradicts itself).
  A list call refused for anything but the key (a long request line answered 400, 413, 414 or 431
  by a server or proxy, a closed route, a bare 403), or answered with more than an answer may hold,
  is asked again in smaller calls: first within a URL length every common server takes, then with
  half as many ids, down to one. The size a host takes is remembered for the process; a host that
  refuses even one id is polled task by task from then on. The log says each change. A refused
  key (401, or 403 with the API's own error) fails every poll of the call: each task would be refused alike;
- otherwise, polls of the same task id share one request.

Each trigger still decides when it polls (its jitter, backoff, ``Retry-After``, deadline) and what an
answer means for it (its error budget): a poll joins the next shared request to be sent, which
goes out once the earliest of its askers' moments (``gather`` seconds after it asked) has passed, or
at once when it holds as many ids as one call can ask for. A failed request fails the poll of every
trigger that shared it; a 429 backs them all off.

Nothing here blocks the event loop: waiting is timers and futures, and a list answer is read and
handed out a slice of tasks per turn of the loop (one answer at a time), so that thousands of
waiting triggers resuming together do not hold the loop for long. A task whose answer is the same
as last time keeps the task object read last time: waiting costs neither a new read nor new objects
for the garbage collector to track.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_videogen.client import PollAnswer
from airflow_provider_videogen.exceptions import VideoGenError
from airflow_provider_videogen.list_call_sizes import ListCallSizes
from airflow_provider_videogen.poll_answers import PollAnswers, Waiting

if TYPE_CHECKING:
    from airflow_provider_videogen.settings import VideoGenConnectionSettings


class _Round:
    """The polls gathered for one shared request: a future per task id, and when the request goes out."""

    __slots__ = ("due", "timer", "url_length", "waiting")

    def __init__(self) -> None:
        # A future per poll (not per id): a trigger cancelled while it waits cancels only its own.
        self.waiting: Waiting = {}
        self.due = math.inf
        self.timer: asyncio.TimerHandle | None = None
        # What the ids add to the list call's URL (counted only where the host wants short URLs).
        self.url_length = 0


class SharedPolls:
    """The shared polls of one connection in one event loop (see the module's description).

    A hook takes a share with :meth:`join`, polls with :meth:`poll` and gives it back with
    :meth:`leave`; the last to leave closes the requests' client (its share of the loop's HTTP session).
    """

    _by_loop: ClassVar[
        weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[VideoGenConnectionSettings, SharedPolls]]
    ] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: VideoGenConnectionSettings) -> None:
        self.loop = loop
        self.settings = settings
        self.users = 0
        # Makes the shared requests and settles each poll with its answer.
        self._answers = PollAnswers(settings)
        # The round being gathered: one for every id where the style batches (key None), else one per id.
        self._rounds: dict[str | None, _Round] = {}
        self._sending: set[asyncio.Task[None]] = set()

    @classmethod
    def forget_refusals(cls) -> None:
        """Forget which hosts refused the list call or its long URLs (tests start each from scratch)."""
        ListCallSizes.forget()

    @classmethod
    def join(cls, settings: VideoGenConnectionSettings) -> SharedPolls:
        """Take a share of the running loop's shared polls of this connection (made on first use)."""
        loop = asyncio.get_running_loop()
        by_settings = cls._by_loop.setdefault(loop, {})
        polls = by_settings.get(settings)
        if polls is None:
            polls = by_settings[settings] = cls(loop, settings)
        polls.users += 1
        return polls

    async def leave(self) -> None:
        """Give the share back; the last one stops what nobody waits for any more and closes the requests' client.

        The close is awaited here, by the last sharer: a close left to a task of its own could still be
        pending when the event loop ends, and be destroyed unfinished.
        """
        self.users -= 1
        if self.users > 0:
            return
        # Out of the registry first: a hook joining meanwhile gets new shared polls, not these.
        by_settings = self._by_loop.get(self.loop)
        if by_settings is not None and by_settings.get(self.settings) is self:
            del by_settings[self.settings]
        # With no sharer left, a round still gathering or a request still in flight answers nobody (its
        # last sharer gave up on its poll, or has its answer and the request is only finishing).
        rounds, self._rounds = list(self._rounds.values()), {}
        for round_ in rounds:
            if round_.timer is not None:
                round_.timer.cancel()
            _cancel(round_.waiting)
        sending = list(self._sending)
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        await self._answers.aclose()

    @property
    def batching(self) -> bool:
        """Whether polls become batch queries (the style has one and this host has not refused it)."""
        return self._answers.batching

    async def poll(self, video_task_id: str, gather: float = 0.0) -> PollAnswer:
        """Read the task in the next shared request, sent at the latest ``gather`` seconds from now.

        Raises what reading the task alone would raise (a failed shared request fails every poll in it).
        """
        self.settings.style.check_task_id(video_task_id)  # a bad id fails its own poll, before anything is sent
        key = None if self._answers.batching else video_task_id
        round_ = self._rounds.get(key)
        if round_ is None:
            round_ = self._rounds[key] = _Round()
        future = self.loop.create_future()
        waiting = round_.waiting.get(video_task_id)
        if waiting is None:
            round_.waiting[video_task_id] = [future]
            if key is None and self._full(round_, video_task_id):
                self._send(key)  # as many ids as one call asks for: nothing to gain by waiting for more
        else:
            waiting.append(future)
        due = self.loop.time() + max(gather, 0.0)
        if due < round_.due and self._rounds.get(key) is round_:
            if round_.timer is not None:
                round_.timer.cancel()
            round_.due = due
            round_.timer = self.loop.call_at(due, self._send, key)
        try:
            return await future
        except VideoGenError as error:
            # The same error reaches every sharer: do not let each raise add to one traceback.
            raise error.with_traceback(None) from None

    def _full(self, round_: _Round, video_task_id: str) -> bool:
        """Whether the round, just given ``video_task_id``, holds as many ids as one list call asks for."""
        sizes = self._answers.sizes
        if len(round_.waiting) >= sizes.ids_per_call:
            return True
        if not sizes.urls_limited:
            return False
        cost = sizes.url_cost(video_task_id)
        round_.url_length += cost  # counted here, as the ids join
        return sizes.too_long(round_.url_length + cost)  # one more like it won't fit

    # ---- sending ----

    def _send(self, key: str | None) -> None:
        round_ = self._rounds.pop(key, None)
        if round_ is None:
            return
        if round_.timer is not None:
            round_.timer.cancel()
        sending = self.loop.create_task(self._answer(round_.waiting))
        self._sending.add(sending)
        sending.add_done_callback(self._sent)

    def _sent(self, sending: asyncio.Task[None]) -> None:
        self._sending.discard(sending)
        if not sending.cancelled():
            sending.exception()  # _answer settles every future itself; nothing is left to report

    async def _answer(self, waiting: Waiting) -> None:
        try:
            await self._answers.answer(waiting)
        finally:
            _cancel(waiting)  # only when this request itself was cancelled (the loop is closing, nobody is left)


def _cancel(waiting: Waiting) -> None:
    for futures in waiting.values():
        for future in futures:
            if not future.done():
                future.cancel()


__all__ = ["PollAnswer", "SharedPolls"]
