"""What to generate, and how each API style wants it sent."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from airflow_provider_videogen._errors import refused

IMAGE_ROLES = ("first_frame", "last_frame", "reference_image")

#: Generation options of the Seedance family. The contents-generations API takes them at the top
#: level; video-generations gateways take vendor options inside "metadata".
SEEDANCE_OPTIONS = (
    "resolution",
    "ratio",
    "frames",
    "camera_fixed",
    "watermark",
    "generate_audio",
    "return_last_frame",
    "service_tier",
    "execution_expires_after",
    "callback_url",
)


@dataclass(frozen=True)
class VideoGenerationRequest:
    """One video generation to submit, in terms every API style understands.

    :param model: the model to run, e.g. ``doubao-seedance-1-0-pro-250528``.
    :param prompt: the text prompt.
    :param image_urls: input images: URLs (or ``data:`` URIs), or ``{"url": ..., "role": ...}`` with a
        role of ``first_frame``, ``last_frame`` or ``reference_image``.
    :param content: a raw ``content`` list for the contents-generations API, instead of
        ``prompt`` and ``image_urls``.
    :param resolution: e.g. ``480p``, ``720p``, ``1080p``.
    :param ratio: e.g. ``16:9``, ``9:16``, ``adaptive``.
    :param duration: length in seconds (exclusive with ``frames``).
    :param frames: length in frames (exclusive with ``duration``).
    :param seed: random seed.
    :param camera_fixed: keep the camera still.
    :param watermark: add the service's watermark.
    :param generate_audio: generate a sound track (send it explicitly: defaults differ by model).
    :param return_last_frame: also return the last frame as a PNG.
    :param service_tier: ``default`` or ``flex`` (cheaper, slower).
    :param execution_expires_after: seconds (3600-259200) after which an unfinished task expires.
    :param callback_url: URL the service calls on status changes (a hint only).
    :param width: width in pixels (video-generations style only).
    :param height: height in pixels (video-generations style only).
    :param fps: frames per second (video-generations style only).
    :param image_file: a local input image to upload: a path, or the image's bytes (PNG, JPEG or
        WebP). Only styles that take uploads send it (``openai_videos``: ``input_reference`` as
        multipart); the others take images as URLs or ``data:`` URIs in ``image_urls``.
    :param cancel_after: seconds after which the service itself stops the generation if it has not
        finished, where the style can ask for that (``replicate``: ``Cancel-After``); the others send
        nothing for it. ``GenerateVideoOperator`` sets it from its ``timeout``.
    :param extra_fields: any other request fields, sent as they are at the top level (a
        ``metadata`` mapping here is merged into the video-generations ``metadata``).
    :param request_identity: a stable identity of whoever submits it (a task instance's key), never
        sent as it is: a style whose service takes an idempotency token (``bedrock_video``) derives
        the token from it and the body, so that the same task repeating the same create gets the
        same generation and is billed once.
    """

    model: str
    prompt: str | None = None
    image_urls: Sequence[str | Mapping[str, Any]] = ()
    content: Sequence[Mapping[str, Any]] | None = None
    resolution: str | None = None
    ratio: str | None = None
    duration: int | float | None = None
    frames: int | None = None
    seed: int | None = None
    camera_fixed: bool | None = None
    watermark: bool | None = None
    generate_audio: bool | None = None
    return_last_frame: bool | None = None
    service_tier: str | None = None
    execution_expires_after: int | None = None
    callback_url: str | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    image_file: str | os.PathLike[str] | bytes | None = None
    cancel_after: float | None = None
    extra_fields: Mapping[str, Any] = field(default_factory=dict)
    request_identity: str | None = None

    @classmethod
    def from_fields(cls, model: str, **request_fields: Any) -> VideoGenerationRequest:
        """Build a request from keyword fields; unknown names go to ``extra_fields``."""
        known = {f.name for f in fields(cls)} - {"model", "extra_fields"}
        extra = dict(request_fields.pop("extra_fields", None) or {})
        named = {k: v for k, v in request_fields.items() if k in known}
        extra.update({k: v for k, v in request_fields.items() if k not in known})
        return cls(model=model, extra_fields=extra, **named)

    def check(self) -> None:
        """Raise a clear error for what no API style accepts (no model, both duration and frames)."""
        if not isinstance(self.model, str) or not self.model.strip():
            raise refused("A video generation needs a model name, e.g. 'doubao-seedance-1-0-pro-250528'.")
        if self.duration is not None and self.frames is not None:
            raise refused("Pass either duration or frames, not both.")


MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""Largest local image :func:`read_image_file` uploads."""

_IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def image_media_type(head: bytes) -> str | None:
    """Return ``image/png``, ``image/jpeg`` or ``image/webp`` from an image's first 12 bytes, else ``None``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_IMAGE_HEAD_BYTES = 12
_IMAGE_TAIL_BYTES = len(_PNG_END)


def image_problem(head: bytes, tail: bytes, size: int) -> str | None:
    """Why an image is not a whole PNG, JPEG or WebP, or ``None`` when it is one.

    :param head: its first bytes (at least 12).
    :param tail: its last bytes (at least 12).
    :param size: its size in bytes.

    A PNG must end with its ``IEND`` chunk, a JPEG with its end-of-image marker, and a WebP's RIFF
    size must match its size: a file cut short, or text behind an image's signature, fails. The
    reason names only these markers, never the file's bytes (beyond the first 16 of an unknown format).
    """
    media_type = image_media_type(head)
    if media_type == "image/png":
        return None if tail.endswith(_PNG_END) else "the PNG is cut short (no IEND chunk at its end)"
    if media_type == "image/jpeg":
        return None if tail.endswith(b"\xff\xd9") else "the JPEG is cut short (no end-of-image marker)"
    if media_type == "image/webp":
        declared = int.from_bytes(head[4:8], "little") + 8
        return None if declared == size else f"the WebP declares {declared} bytes and {size} arrived"
    return f"it is not a PNG, JPEG or WebP image (it starts with {head[:16]!r})"


@dataclass(frozen=True)
class Upload:
    """A file sent with a create call (multipart/form-data).

    :param form_field: the form field's name.
    :param filename: the file name sent.
    :param data: the bytes.
    :param content_type: the file's media type.
    """

    form_field: str
    filename: str
    data: bytes = field(repr=False)
    content_type: str


def read_image_file(image: str | os.PathLike[str] | bytes, field_name: str) -> Upload:
    """Read a local input image (a path or bytes) for upload; raise a clear error if it is not one.

    A path must lead (through any links) to a regular file of at most :data:`MAX_UPLOAD_BYTES`, and
    the bytes must be a whole PNG, JPEG or WebP image (the check landed last frames get).
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        data, name = bytes(image), None
        shown = "image_file"
    elif isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        data, name = _read_local_image(path), os.path.basename(path)
        shown = f"The image file {path!r}"
    else:
        raise refused(f"image_file must be a path or bytes, got {type(image).__name__}.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise refused(f"{shown} is more than {MAX_UPLOAD_BYTES} bytes, the most that is uploaded.")
    media_type = image_media_type(data[:12])
    if media_type is None:
        raise refused(f"{shown} is not a PNG, JPEG or WebP image.")
    problem = image_problem(data[:_IMAGE_HEAD_BYTES], data[-_IMAGE_TAIL_BYTES:], len(data))
    if problem is not None:
        # The problem names only the format's own markers, never the file's content.
        raise refused(f"{shown} is not a whole image: {problem}. Pass the complete image file.")
    return Upload(field_name, name or f"{field_name}.{_IMAGE_EXTENSIONS[media_type]}", data, media_type)


def _read_local_image(path: str) -> bytes:
    """Read at most ``MAX_UPLOAD_BYTES + 1`` bytes of a regular file (links followed); refuse anything else."""
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer (a regular file ignores the flag).
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(descriptor, "rb") as file:
            # The type of what was opened, not of the name: a link or a swapped file cannot slip past.
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                kind = next((what for test, what in _NOT_REGULAR if test(mode)), "a special file")
                raise refused(
                    f"The image file {path!r} is not a regular file (it is {kind}); pass an image file, "
                    "its bytes, or a URL in image_urls."
                )
            # One byte past the limit tells a file that is too big, whatever size it claims (/proc files claim 0).
            return file.read(MAX_UPLOAD_BYTES + 1)
    except OSError as error:
        raise refused(
            f"Cannot read the image file {path!r} ({error.strerror or error}); pass an existing local "
            "image, its bytes, or a URL in image_urls."
        ) from None


_NOT_REGULAR = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def image_item(image: str | Mapping[str, Any]) -> dict[str, Any]:
    """Turn an input image (a URL, or ``{"url", "role"}``) into a ``content`` item; raise for a bad one."""
    if isinstance(image, str):
        url, role = image, None
    elif isinstance(image, Mapping) and isinstance(image.get("url"), str):
        url, role = image["url"], image.get("role")
    else:
        raise refused(f"Each image must be a URL or {{'url': ..., 'role': ...}}, got {image!r}.")
    if not url.strip():
        raise refused("An image URL is empty.")
    item: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if role is not None:
        if role not in IMAGE_ROLES:
            raise refused(f"Image role {role!r} is not one of: {', '.join(IMAGE_ROLES)}.")
        item["role"] = role
    return item
