"""File hosts, files and policies the download tests share: small loopback servers that misbehave on purpose."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_videogen.hooks.videogen import RetryPolicy
from airflow_provider_videogen.testing._media import video_bytes
from airflow_provider_videogen.transport import AddressPolicy
from tests.loopback import LoopbackServer, QuietHandler

FAST_RETRIES = RetryPolicy(max_attempts=3, max_seconds=30, initial_wait=0.01, max_wait=0.02)
LOCAL_HOSTS = AddressPolicy(allow_loopback=True)  # the test's own file hosts listen on loopback


def mp4_bytes(size: int, task_id: str = "t1") -> bytes:
    """A whole MP4 file of ``size`` bytes (the simulator's, so it passes the content check)."""
    return b"".join(video_bytes(task_id, size))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class PlainFileHost(LoopbackServer):
    """A minimal file host: ignores ``Range``, may cut its first answer short or send extra headers."""

    def __init__(self, body: bytes, cut_first_answer_at: int | None = None, headers: dict[str, str] | None = None):
        self.body = body
        self.cut = cut_first_answer_at
        self.ranges: list[str | None] = []
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.ranges.append(self.headers.get("Range"))
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.send_header("ETag", '"v1"')
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if len(outer.ranges) == 1 and outer.cut is not None:
                    self.wfile.write(outer.body[: outer.cut])
                    self.close_connection = True
                else:
                    self.wfile.write(outer.body)

        super().__init__(Handler)
        self.url = f"{self.base_url}/video.mp4?X-Signature=s"


class ChangingFileHost(LoopbackServer):
    """Serves ``first`` (cut short), then answers the resume with a 206 of ``second``, ignoring If-Range."""

    def __init__(self, first: bytes, second: bytes, cut_at: int, *, change: str) -> None:
        self.requests: list[tuple[str | None, str | None]] = []
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                wanted = self.headers.get("Range")
                outer.requests.append((wanted, self.headers.get("If-Range")))
                body = first if len(outer.requests) == 1 else second
                etag = '"v1"' if len(outer.requests) == 1 or change != "etag" else '"v2"'
                modified = "Mon, 30 Nov 2026 10:00:00 GMT"
                if len(outer.requests) > 1 and change == "last_modified":
                    modified = "Tue, 01 Dec 2026 10:00:00 GMT"
                if wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
                    start = int(wanted[6:-1])
                    total = len(body) if change != "total" else len(body) + 1000
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{total}")
                    payload = body[start:]
                else:
                    self.send_response(200)
                    payload = body
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", modified)
                self.end_headers()
                if len(outer.requests) == 1:
                    self.wfile.write(payload[:cut_at])
                    self.close_connection = True
                else:
                    self.wfile.write(payload)

        super().__init__(Handler)
        self.url = f"{self.base_url}/video.mp4?X-Signature=s"


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Fail a test that leaves a download's hashing thread running (import it into a test module to use it)."""
    before = {t.name for t in threading.enumerate()}
    yield
    leaked = {t.name for t in threading.enumerate()} - before
    assert not {name for name in leaked if name.startswith("videogen-sha256")}
