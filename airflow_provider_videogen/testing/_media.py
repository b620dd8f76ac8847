"""Deterministic media served by the simulator's file host.

The video of a task is a structurally valid MP4 file of an exact size: an ``ftyp`` box, a minimal
``moov`` box holding an ``mvhd`` box, then one ``mdat`` box filled with pseudo-random bytes derived
from the task id. The payload repeats a 1 MiB block computed once per task (kept in a small LRU
cache), so any byte range of any size can be produced quickly without holding the file in memory.
Such a file has no track: a player cannot show it.

The sample clip is what a person opens: a five-second H.264 MP4 and a PNG of its last frame,
shipped in ``media/`` (made with ``scripts/make_simulator_clip.py``). A simulator started with
``clip=True`` serves them in place of the made-up files.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from functools import lru_cache
from importlib.resources import files

BLOCK_SIZE = 1 << 20
"""Size of the pseudo-random block that the ``mdat`` payload repeats."""

_MVHD_DURATION_MS = 5000


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _build_prefix() -> bytes:
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    matrix = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
    mvhd_payload = (
        struct.pack(">I", 0)  # version 0, flags 0
        + struct.pack(">IIII", 0, 0, 1000, _MVHD_DURATION_MS)  # creation, modification, timescale, duration
        + struct.pack(">IH", 0x00010000, 0x0100)  # rate 1.0, volume 1.0
        + b"\x00" * 10  # reserved
        + matrix
        + b"\x00" * 24  # pre_defined
        + struct.pack(">I", 2)  # next_track_ID
    )
    moov = _box(b"moov", _box(b"mvhd", mvhd_payload))
    return ftyp + moov


_PREFIX = _build_prefix()


def _header(size: int) -> bytes:
    """Return the bytes that precede the ``mdat`` payload for a file of ``size`` bytes."""
    payload = size - len(_PREFIX) - 8
    if payload < 0:
        # Too small for a valid file: serve a prefix of the structure, still exactly ``size`` bytes.
        return (_PREFIX + struct.pack(">I", 8) + b"mdat")[:size]
    if payload + 8 <= 0xFFFFFFFF:
        return _PREFIX + struct.pack(">I", payload + 8) + b"mdat"
    # 64-bit "largesize" box header.
    return _PREFIX + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", size - len(_PREFIX))


@lru_cache(maxsize=8)
def _block(task_id: str) -> bytes:
    """Return the pseudo-random block of a task (deterministic, independent of the Python version)."""
    return hashlib.shake_256(b"videogen-simulator:" + task_id.encode()).digest(BLOCK_SIZE)


def iter_video(task_id: str, size: int, start: int = 0, stop: int | None = None) -> Iterator[memoryview]:
    """Yield the bytes ``[start, stop)`` of a task's video as memoryviews (no copies of the block)."""
    stop = size if stop is None else min(stop, size)
    start = max(start, 0)
    if start >= stop:
        return
    header = _header(size)
    hlen = len(header)
    if start < hlen:
        yield memoryview(header)[start : min(stop, hlen)]
        start = hlen
    if start >= stop:
        return
    block = memoryview(_block(task_id))
    offset = (start - hlen) % BLOCK_SIZE
    position = start
    while position < stop:
        take = min(BLOCK_SIZE - offset, stop - position)
        yield block[offset : offset + take]
        position += take
        offset = 0


def video_bytes(task_id: str, size: int, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
    """Yield, in chunks, the exact bytes the simulator serves as the video of ``task_id``.

    :param task_id: the task id (the content depends on it).
    :param size: total size of the file in bytes.
    :param start: first byte offset to produce.
    :param stop: offset to stop before (default: the end of the file).
    """
    for chunk in iter_video(task_id, size, start, stop):
        yield chunk.tobytes()


@lru_cache(maxsize=256)
def video_sha256(task_id: str, size: int) -> str:
    """Return the hex SHA-256 of the video the simulator serves for ``task_id`` at ``size`` bytes."""
    digest = hashlib.sha256()
    for chunk in iter_video(task_id, size):
        digest.update(chunk)
    return digest.hexdigest()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=64)
def frame_png(task_id: str, width: int = 64, height: int = 36) -> bytes:
    """Return a small valid PNG (RGB, a gradient tinted by the task id) used as the last frame."""
    tint = hashlib.sha256(task_id.encode()).digest()
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows += bytes(((tint[0] + x * 3) & 0xFF, (tint[1] + y * 5) & 0xFF, tint[2]))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + _png_chunk(b"IEND", b"")
    )


@lru_cache(maxsize=1)
def clip_video() -> bytes:
    """Return the sample clip: a five-second, 640x360 H.264 MP4 that any player opens (about 250 KB)."""
    return files("airflow_provider_videogen.testing").joinpath("media/clip.mp4").read_bytes()


@lru_cache(maxsize=1)
def clip_png() -> bytes:
    """Return the last frame of :func:`clip_video` as a PNG (640x360, RGB)."""
    return files("airflow_provider_videogen.testing").joinpath("media/clip.png").read_bytes()


@lru_cache(maxsize=1)
def clip_sha256() -> str:
    """Return the hex SHA-256 of :func:`clip_video`."""
    return hashlib.sha256(clip_video()).hexdigest()
