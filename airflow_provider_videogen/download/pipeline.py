"""The threaded write pipeline: each chunk hashed and written by helper threads while the next one is read."""

from __future__ import annotations

import contextlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# Chunks smaller than this are hashed and written inline; larger ones in the background.
_BACKGROUND_HASH_MIN = 256 * 1024


class _WritePipeline:
    """Hash and write each chunk in two helper threads while the caller reads the next one.

    ``hashlib`` and file writes release the GIL for large buffers, so reading chunk *n + 1* (the
    caller), hashing chunk *n* and writing it (one helper thread each, in order) run at once. The
    caller reads into buffers it gets from :meth:`buffer`: a few, reused, each handed out again only
    once both helpers are done with it, so no chunk is copied and memory stays at a few chunks.
    """

    #: Buffers in use at most: one being read, one being hashed and written, one in between.
    buffers = 3

    def __init__(self) -> None:
        self._free: list[bytearray] = []
        self._in_hand: deque[tuple[bytearray | None, Future[Any], Future[Any]]] = deque()
        self._made = 0
        self._hasher: ThreadPoolExecutor | None = None
        self._writer: ThreadPoolExecutor | None = None

    def buffer(self, size: int) -> memoryview:
        while not self._free and self._made >= self.buffers and self._in_hand:
            self._finish_oldest()
        block = self._free.pop() if self._free else None
        if block is None or len(block) < size:
            block = bytearray(size)
            self._made += 1
        return memoryview(block)[:size]

    def submit(self, chunk: bytes | memoryview, hash_update: Any, write: Any) -> None:
        if len(chunk) < _BACKGROUND_HASH_MIN:
            self.drain()  # a thread hand-off costs more than a small chunk: in order, right here
            hash_update(chunk)
            write(chunk)
            return
        if self._hasher is None or self._writer is None:
            self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="videogen-sha256")
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="videogen-write")
        owner = chunk.obj if isinstance(chunk, memoryview) and isinstance(chunk.obj, bytearray) else None
        self._in_hand.append((owner, self._hasher.submit(hash_update, chunk), self._writer.submit(write, chunk)))

    def drain(self) -> None:
        while self._in_hand:
            self._finish_oldest()

    def close(self) -> None:
        """Let the chunks in hand finish, ignoring their errors, and stop the helper threads."""
        with contextlib.suppress(Exception):
            self.drain()
        self._in_hand.clear()
        for executor in (self._hasher, self._writer):
            if executor is not None:
                executor.shutdown(wait=True)
        self._hasher = self._writer = None
        self._free.clear()

    def _finish_oldest(self) -> None:
        owner, hashed, written = self._in_hand.popleft()
        try:
            hashed.result()
        finally:
            written.result()
            if owner is not None:
                self._free.append(owner)
