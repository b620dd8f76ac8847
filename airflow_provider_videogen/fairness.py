"""Work handed out to many waiters at once, a slice per turn of the event loop.

Thousands of triggers in one event loop often wait on one thing: a connection lookup, a list call
answering hundreds of tasks. Resolving all their futures at once would resume them all in the same
turn of the loop, which then holds everything else up (other triggers, the triggerer's heartbeat)
for as long as all of them take. Handing out a slice at a time lets the loop run in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")

#: Waiters handed their result per turn of the event loop.
SLICE = 64


async def in_turns(items: Iterable[T], size: int = SLICE) -> AsyncIterator[T]:
    """Yield ``items``, letting the event loop run after every ``size`` of them."""
    for count, item in enumerate(items):
        if count and count % size == 0:
            await asyncio.sleep(0)
        yield item


__all__ = ["SLICE", "in_turns"]
