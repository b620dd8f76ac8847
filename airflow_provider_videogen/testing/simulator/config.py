"""The simulator's settings, and the constants its routes share.

The settings are defined once: the command line and the process harness are made from
:class:`SimulatorConfig`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

SHAPES = ("gateway", "documented")
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "expired")
FAULT_KINDS = (
    "http_error", "reset", "slow", "empty_body", "malformed_body", "truncate", "expired", "trickle", "throttle",
    "echo_key", "cookie", "oversized", "duplicate", "redirect",
)  # fmt: skip
#: How an ``echo_key`` fault writes the key into the answer: as is, JSON-escaped with ``\/``, or as ``\uXXXX``.
ECHO_ESCAPES = ("raw", "slash", "unicode")
FAULT_TARGETS = ("query", "create", "cancel", "list", "download", "result", "token", "any")

DEFAULT_MODEL = "doubao-seedance-1-0-pro-250528"
LISTEN_BACKLOG = 4096

MSG_OUTPUT_MODERATION = "The request failed because the output video may contain sensitive information."
MSG_INPUT_MODERATION = "The request failed because the input text may contain sensitive information."


@dataclass
class SimulatorConfig:
    """Settings of a simulator instance.

    :param api_key: the only API key accepted (``Authorization: Bearer <api_key>``).
    :param queued_seconds: default time a task stays ``queued`` after creation.
    :param running_seconds: default time a task then stays ``running`` before its final status.
    :param video_size: default size in bytes of the videos served.
    :param clip: serve the sample clip (a playable five-second H.264 MP4, its own size) and its last
        frame as the files of every task that asks for no size of its own (``[sim:size=N]`` does);
        ``make demo`` and ``make airflow`` turn it on so that the video a person opens plays. Off,
        videos are made-up bytes of ``video_size`` in an MP4 container with no track.
    :param video_generations_shape: how style-2 queries answer: ``"gateway"`` (the wrapped answer the
        new-api gateway really returns) or ``"documented"`` (the flat documented answer).
    :param url_ttl: seconds a file URL stays valid after the task finished.
    :param openai_poll_after_ms: the ``openai-poll-after-ms`` header of ``/videos`` answers (``None``: none).
    :param openai_direct_url: ``/videos`` objects carry ``metadata.url``, a direct file URL, as new-api's do.
    :param request_log: record requests (disable for benchmarks).
    :param request_log_size: the request log keeps only the most recent entries.
    :param max_request_line: longest request line (method, path and query) served, in bytes; a longer one
        is refused with HTTP 400, as aiohttp, nginx and Apache refuse one past about 8 KiB by default.
        Raise it to act as a host that takes a list call of 500 ids (~20,000 bytes). Fixed at start.
    :param request_line_limit: a request-line limit (in bytes) of a server or proxy in front of the service,
        checked below ``max_request_line``: a longer request line is answered ``request_line_status``
        with a short text body, as Node, Go or Envoy do (``None``: no such limit).
    :param request_line_status: the status answering a request line past ``request_line_limit``: 414
        (URI Too Long), 431 (Node and Go), 413 (some proxies) or 400; any 4xx.
    :param task_object_padding: characters of filler in every contents-generations task object answered
        (query and list, in a ``padding`` field), as a task carrying long fields is large: 300 tasks of
        15,000 make a list answer past a client's 4 MiB limit.
    :param s3_endpoint: an S3 server (``http://host:port``, e.g. moto's) that completed ``bedrock_video``
        invocations write their ``output.mp4`` into, as Bedrock writes into the user's bucket (``None``: none).
    :param gcs_endpoint: a GCS server (``http://host:port``, e.g. the GCS emulator) that completed ``vertex_veo``
        operations with a ``storageUri`` write their ``sample_0.mp4`` into, as Vertex does (``None``: none).
    """

    api_key: str = "sim-key"
    queued_seconds: float = 1.0
    running_seconds: float = 2.0
    video_size: int = 1_048_576
    clip: bool = False
    video_generations_shape: str = "gateway"
    url_ttl: float = 86_400.0
    openai_poll_after_ms: int | None = None
    openai_direct_url: bool = False
    request_log: bool = True
    request_log_size: int = 50_000
    max_request_line: int = 8190
    request_line_limit: int | None = None
    request_line_status: int = 414
    task_object_padding: int = 0
    s3_endpoint: str | None = None
    gcs_endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.video_generations_shape not in SHAPES:
            raise ValueError(f"video_generations_shape must be one of {SHAPES}")
        if self.queued_seconds < 0 or self.running_seconds < 0:
            raise ValueError("queued_seconds and running_seconds must be >= 0")
        if self.video_size < 0:
            raise ValueError("video_size must be >= 0")
        if self.request_log_size < 1:
            raise ValueError("request_log_size must be >= 1")
        if self.max_request_line < 256:
            raise ValueError("max_request_line must be >= 256")
        if self.request_line_limit is not None and self.request_line_limit < 16:
            raise ValueError("request_line_limit must be >= 16 or None")
        if not 400 <= self.request_line_status <= 499:
            raise ValueError("request_line_status must be a 4xx status")
        if self.task_object_padding < 0:
            raise ValueError("task_object_padding must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    def to_argv(self) -> list[str]:
        """Return the command-line options that make a simulator process with these settings."""
        argv: list[str] = []
        for name, value in self.to_dict().items():
            option = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                argv.append(option if value else "--no-" + option[2:])
            elif value is not None:
                argv += [option, repr(value) if isinstance(value, float) else str(value)]
        return argv


def _option_type(hint: Any) -> Any:
    """``int`` for ``int | None``; the hint itself otherwise."""
    return next((arg for arg in typing.get_args(hint) if arg is not type(None)), hint)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--option`` per :class:`SimulatorConfig` field, with its default and its docstring line."""
    hints = typing.get_type_hints(SimulatorConfig)
    docs = _field_docs()
    for field in dataclasses.fields(SimulatorConfig):
        kind = _option_type(hints[field.name])
        option = "--" + field.name.replace("_", "-")
        help_text = docs.get(field.name, "")
        if kind is bool:
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=field.default, help=help_text)
        elif field.name == "video_generations_shape":
            parser.add_argument(option, choices=SHAPES, default=field.default, help=help_text)
        else:
            parser.add_argument(option, type=kind, default=field.default, help=help_text)


def config_from_arguments(args: argparse.Namespace) -> SimulatorConfig:
    """Build the settings from parsed options (:func:`add_config_arguments`); raise ``ValueError`` if bad."""
    return SimulatorConfig(**{field.name: getattr(args, field.name) for field in dataclasses.fields(SimulatorConfig)})


def _field_docs() -> dict[str, str]:
    docs: dict[str, str] = {}
    name = None
    for line in (SimulatorConfig.__doc__ or "").splitlines():
        stripped = line.strip()
        if stripped.startswith(":param "):
            name, _, text = stripped[len(":param ") :].partition(":")
            docs[name] = text.strip()
        elif name and stripped:
            docs[name] += " " + stripped
        else:
            name = None
    return {key: value.replace("%", "%%").replace("``", "") for key, value in docs.items()}
