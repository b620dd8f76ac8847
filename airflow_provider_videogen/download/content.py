"""Content checks: as the bytes stream past, that a file is what its kind says, and that it is whole."""

from __future__ import annotations

from airflow_provider_videogen.download._types import FileKind
from airflow_provider_videogen.generation_request import image_problem

_KIND_DESCRIPTIONS: dict[str, str] = {
    "video": "a video (MP4, QuickTime or WebM)",
    "last_frame": "an image (PNG, JPEG or WebP)",
}
_EBML_SIGNATURE = b"\x1a\x45\xdf\xa3"  # WebM / Matroska
# QuickTime files may start with one of these instead of ``ftyp``.
_QUICKTIME_FIRST_BOXES = frozenset({b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
_HEAD_BYTES = 64


class _ContentCheck:
    """Checks, as the bytes stream past, that a file is what its kind says, and that it is whole.

    A video must be an ISO base media file (MP4, QuickTime) whose top-level boxes add up to exactly
    the bytes received, with an ``ftyp`` box first (or a QuickTime first box) and a ``moov`` box: an
    empty body, an HTML page or a file cut short (a ``Content-Length`` lying low) all fail that.
    WebM / Matroska is recognised by its signature. A last frame must be a PNG (ending with its
    ``IEND`` chunk), a JPEG (ending with its end-of-image marker) or a WebP (whose RIFF size matches).
    Only a few bytes per box are looked at, so the check costs nothing next to the copy.
    """

    def __init__(self, kind: FileKind) -> None:
        self.kind = kind
        self.size = 0
        self.head = bytearray()
        self.tail = b""
        self.boxes = _BoxWalk()

    def feed(self, chunk: bytes | memoryview) -> None:
        if len(self.head) < _HEAD_BYTES:
            self.head += chunk[: _HEAD_BYTES - len(self.head)]
        if self.kind == "video":
            self.boxes.feed(chunk, self.size)
        else:
            self.tail = (self.tail + bytes(chunk[-16:]))[-16:]
        self.size += len(chunk)

    def problem(self) -> str | None:
        head = bytes(self.head)
        if self.size == 0:
            return "the body is empty"
        if head.lstrip()[:1] == b"<":
            return f"it looks like HTML or XML (it starts with {head[:24]!r})"
        if self.kind == "video":
            return self._video_problem(head)
        return self._image_problem(head)

    def _video_problem(self, head: bytes) -> str | None:
        if head.startswith(_EBML_SIGNATURE):
            return None
        boxes = self.boxes
        first = boxes.types[0] if boxes.types else None
        if first != b"ftyp" and first not in _QUICKTIME_FIRST_BOXES:
            return f"it does not start like an MP4 file (no ftyp box; it starts with {head[:16]!r})"
        if boxes.problem:
            return boxes.problem
        if not boxes.open_ended and boxes.next != self.size:
            return (
                f"it is cut short: its boxes need {boxes.next} bytes and {self.size} arrived"
                if boxes.next > self.size
                else f"{self.size - boxes.next} bytes follow its last box"
            )
        if b"moov" not in boxes.types and not boxes.open_ended:
            return "it has no moov box (no movie header), so it cannot be played"
        return None

    def _image_problem(self, head: bytes) -> str | None:
        return image_problem(head, self.tail, self.size)


class _BoxWalk:
    """Follows the top-level boxes of an ISO base media file as its bytes stream past in chunks."""

    def __init__(self) -> None:
        self.next = 0  # offset of the next box header
        self.header = bytearray()  # the part of that header received so far
        self.types: list[bytes] = []
        self.problem: str | None = None
        self.open_ended = False  # the last box has size 0: it runs to the end of the file

    def feed(self, chunk: bytes | memoryview, offset: int) -> None:
        end = offset + len(chunk)
        while self.problem is None and not self.open_ended and self.next + len(self.header) < end:
            start = self.next + len(self.header) - offset
            large = len(self.header) >= 4 and int.from_bytes(self.header[:4], "big") == 1
            needed = (16 if large else 8) - len(self.header)
            self.header += chunk[start : start + needed]
            if len(self.header) < 8:
                return
            size = int.from_bytes(self.header[:4], "big")
            if size == 1 and len(self.header) < 16:
                continue
            self._box_done(size if size != 1 else int.from_bytes(self.header[8:16], "big"))

    def _box_done(self, size: int) -> None:
        box_type = bytes(self.header[4:8])
        header_length = len(self.header)
        self.header.clear()
        if not all(32 <= byte < 127 for byte in box_type):
            self.problem = f"the box at byte {self.next} has no readable type"
            return
        self.types.append(box_type)
        if size == 0:
            self.open_ended = True
        elif size < header_length:
            self.problem = f"the {box_type.decode()} box at byte {self.next} declares an impossible size {size}"
        else:
            self.next += size
