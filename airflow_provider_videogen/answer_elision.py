"""Inline files kept out of an API answer while it is read: their values dropped as the bytes stream in.

An API answer may carry a video inline (Vertex's ``bytesBase64Encoded``, tens of MB of base64 in a
small JSON object). The transport reads such an answer through :class:`ElidedMembers`, which drops
those values before the answer's size limit counts them: the file never reaches memory, a log, XCom
or an event, and is read again, streamed, when it is landed. The transport's names for it stay
importable from :mod:`~airflow_provider_videogen.transport`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["ElidedMembers"]


class ElidedMembers:
    """Drop the values of named JSON string members from an answer while it streams in (they read ``""``).

    For an API answer that may carry a file inline (Vertex's ``bytesBase64Encoded``, tens of MB): the
    rest of the answer is a small JSON object, kept and capped as any answer; the file is never held,
    and is read again, streamed, when it is landed. Fed block by block, it keeps only the few bytes
    that could start a member's name across two blocks.

    :param names: the member names.
    """

    # JSON allows any whitespace around ":"; a service writes little, and a bound keeps the tail small.
    _SPACE = 64

    def __init__(self, names: Sequence[str]) -> None:
        alternatives = b"|".join(re.escape(name.encode()) for name in names)
        space = rb"[ \t\r\n]{0,%d}" % self._SPACE
        self._start = re.compile(rb'"(?:' + alternatives + rb')"' + space + b":" + space + b'"')
        self._longest = max(len(name.encode()) for name in names) + 4 + 2 * self._SPACE
        self._tail = b""
        self._skipping = False

    def feed(self, block: bytes) -> bytes:
        """Return what of ``block`` (after what was held back) is kept."""
        data, self._tail = self._tail + block, b""
        kept = bytearray()
        position = 0
        while True:
            if self._skipping:
                # A base64 value holds no '"' (nor an escaped one): the next quote ends it.
                end = data.find(b'"', position)
                if end < 0:
                    return bytes(kept)
                self._skipping, position = False, end
            found = self._start.search(data, position)
            if found is None:
                cut = max(position, len(data) - self._longest)
                kept += data[position:cut]
                self._tail = data[cut:]
                return bytes(kept)
            kept += data[position : found.end()]
            position, self._skipping = found.end(), True

    def close(self) -> bytes:
        """Return what was held back at the end of the answer."""
        tail, self._tail = self._tail, b""
        return tail
