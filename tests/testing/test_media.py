"""The simulator's media: the shipped sample clip is a real H.264 video, its last frame a real PNG."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from airflow_provider_videogen.testing._media import clip_png, clip_video


def boxes(data: bytes, start: int = 0, stop: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """The ISO BMFF boxes in ``data[start:stop]``: ``(type, payload start, box end)``."""
    stop = len(data) if stop is None else stop
    while start + 8 <= stop:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[start + 8 : start + 16])[0], 16
        assert size >= header, f"box {kind!r} at {start} has size {size}"
        yield kind, start + header, start + size
        start += size


def child(data: bytes, parent: tuple[int, int], *path: bytes) -> tuple[int, int]:
    """The payload bounds of the box at ``path`` under the box whose payload is ``parent``."""
    for kind in path:
        found = [(s, e) for k, s, e in boxes(data, *parent) if k == kind]
        assert found, f"no {kind!r} box"
        parent = found[0]
    return parent


def test_the_sample_clip_is_an_h264_mp4_of_five_seconds_with_its_index_first():
    data = clip_video()
    top = [kind for kind, _, _ in boxes(data)]
    # moov before mdat: a player starts while the file is still loading.
    assert top[0] == b"ftyp" and top.index(b"moov") < top.index(b"mdat")
    moov = next((s, e) for k, s, e in boxes(data) if k == b"moov")
    mvhd = child(data, moov, b"mvhd")
    timescale, duration = struct.unpack(">II", data[mvhd[0] + 12 : mvhd[0] + 20])
    assert 4.9 <= duration / timescale <= 5.1
    stbl = child(data, moov, b"trak", b"mdia", b"minf", b"stbl")
    hdlr = child(data, moov, b"trak", b"mdia", b"hdlr")
    assert data[hdlr[0] + 8 : hdlr[0] + 12] == b"vide"
    stsd = child(data, stbl, b"stsd")
    entry = next(boxes(data, stsd[0] + 8, stsd[1]))
    assert entry[0] == b"avc1"  # H.264
    width, height = struct.unpack(">HH", data[entry[1] + 24 : entry[1] + 28])
    assert (width, height) == (640, 360)
    stsz = child(data, stbl, b"stsz")
    frames = struct.unpack(">I", data[stsz[0] + 8 : stsz[0] + 12])[0]
    assert frames == 120  # 5 s at 24 fps
    mdat = next((s, e) for k, s, e in boxes(data) if k == b"mdat")
    assert mdat[1] - mdat[0] > 50_000  # real pictures, not a placeholder
    assert len(data) < 400_000  # small enough to ship in the package


def test_the_sample_clips_last_frame_is_an_rgb_png_of_the_clips_size():
    data = clip_png()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: list[tuple[bytes, bytes]] = []
    offset = 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height, depth, colour) == (640, 360, 8, 2)
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + width * 3)
