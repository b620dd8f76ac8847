"""The transport layer on its own: whole-request deadlines, bounded answers, file-host addresses."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import requests

from airflow_provider_videogen import transport
from airflow_provider_videogen.exceptions import VideoFileHostRefusedError
from airflow_provider_videogen.transport import AddressPolicy, AnswerTooLargeError, RequestDeadlineExceeded
from tests.loopback import LoopbackServer, QuietHandler


class _UnsizedServer(LoopbackServer):
    """Answers every GET with ``body`` and no Content-Length (the end of the body is the end of the connection)."""

    def __init__(self, body: bytes) -> None:
        class Handler(QuietHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)
        self.url = f"{self.base_url}/task"


def test_an_unsized_answer_is_read_up_to_the_limit_then_refused():
    with _UnsizedServer(b"x" * 300_000) as server:
        session = transport.new_session()
        assert transport.send(session, "GET", server.url, timeout=5, max_body=300_000).body == b"x" * 300_000
        with pytest.raises(AnswerTooLargeError, match="more than 100000 bytes"):
            transport.send(session, "GET", server.url, timeout=5, max_body=100_000)


async def test_an_unsized_answer_is_refused_by_the_async_reader():
    with _UnsizedServer(b"x" * 300_000) as server:
        async with aiohttp.ClientSession() as session, session.get(server.url) as response:
            with pytest.raises(AnswerTooLargeError):
                await transport.aread_bounded(response, 100_000)


class _SilentServer:
    """Accepts connections and sends the status line, then one byte a second, forever."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/task"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(client,), daemon=True).start()

    def _drip(self, client: socket.socket) -> None:
        with client:
            try:
                client.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
                    if self.stop.wait(0.25):
                        return
                    client.sendall(bytes([byte]))
            except OSError:
                return

    def __enter__(self) -> _SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sock.close()


def test_headers_that_trickle_in_are_cut_at_the_deadline_too():
    with _SilentServer() as server, pytest.raises(RequestDeadlineExceeded, match="within 1 s"):
        transport.send(transport.new_session(), "GET", server.url, timeout=1.0)


# ---- addresses -------------------------------------------------------------------------------

REFUSED = [
    ("169.254.169.254", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("10.1.2.3", "a private address"),
    ("172.16.0.1", "a private address"),
    ("192.168.1.1", "a private address"),
    ("fd00::1", "a private address"),
    ("0.0.0.0", "an unspecified address"),
    ("::", "an unspecified address"),
    ("127.0.0.1", "a loopback address"),
    ("::1", "a loopback address"),
    ("::ffff:169.254.169.254", "a link-local address"),
    ("100.64.0.1", "an address that is not publicly routable"),
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_internal_addresses_are_refused_by_default(address, reason):
    assert AddressPolicy().refusal(address) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert AddressPolicy().refusal(address) is None


def test_loopback_is_allowed_when_asked_and_private_only_with_allow_private():
    assert AddressPolicy(allow_loopback=True).refusal("127.0.0.1") is None
    assert AddressPolicy(allow_loopback=True).refusal("10.0.0.1") == "a private address"
    assert AddressPolicy(allow_private=True).refusal("10.0.0.1") is None
    assert AddressPolicy(allow_private=True).refusal("169.254.169.254") is None


@pytest.fixture
def no_traffic_off_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail loudly, without sending anything, if code under test connects anywhere but loopback."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        attempts.append(address)
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a connection to {address!r} was attempted")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield attempts


def test_a_host_name_that_resolves_to_an_internal_address_is_refused_before_connecting(
    monkeypatch, no_traffic_off_loopback
):
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "metadata.internal.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    session = transport.new_session(address_policy=AddressPolicy())
    with pytest.raises(VideoFileHostRefusedError, match=r"metadata\.internal\.test \(169\.254\.169\.254\)"):
        session.get("http://metadata.internal.test/latest/meta-data/", timeout=5)
    assert no_traffic_off_loopback == []


def test_the_connection_goes_to_the_checked_address(monkeypatch, no_traffic_off_loopback):
    """A second lookup (DNS rebinding) cannot move the connection: it goes to the address checked."""
    answers = iter(["127.0.0.1", "169.254.169.254"])

    def rebinding_getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        address = next(answers, "169.254.169.254") if host == "rebind.test" else host
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    with _UnsizedServer(b"{}") as server:
        port = server.base_url.rsplit(":", 1)[1]
        monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
        session = transport.new_session(address_policy=AddressPolicy(allow_loopback=True))
        assert session.get(f"http://rebind.test:{port}/task", timeout=5).content == b"{}"
    assert [a[0] for a in no_traffic_off_loopback] == ["127.0.0.1"]


def test_a_loopback_host_is_refused_unless_allowed(no_traffic_off_loopback):
    with _UnsizedServer(b"{}") as server:
        with pytest.raises(VideoFileHostRefusedError, match="loopback"):
            transport.new_session(address_policy=AddressPolicy()).get(server.url, timeout=5)
        assert transport.new_session(address_policy=AddressPolicy(allow_loopback=True)).get(server.url).ok
    assert len(no_traffic_off_loopback) == 1


def test_the_file_host_session_never_sends_authorization():
    seen: list[str | None] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(204)
            self.end_headers()

    with LoopbackServer(Handler) as server:
        session = transport.new_session(strip_authorization=True)
        session.get(f"{server.base_url}/", headers={"Authorization": "Bearer k"})
    assert seen == [None]


def test_requests_errors_other_than_the_deadline_pass_through():
    with pytest.raises(requests.ConnectionError):
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        transport.send(transport.new_session(), "GET", f"http://127.0.0.1:{port}/", timeout=2)


def test_the_deadline_timer_is_cancelled_after_each_request():
    with _UnsizedServer(b"{}") as server:
        before = threading.active_count()
        for _ in range(5):
            transport.send(transport.new_session(), "GET", server.url, timeout=30)
        asyncio.run(asyncio.sleep(0.05))
        assert threading.active_count() <= before + 1


# ---- cookies ---------------------------------------------------------------------------------


class _CookieSettingServer(LoopbackServer):
    """Sets a cookie on every answer to key A's requests, and records the ``Cookie`` header each key sends.

    Reached as ``localhost``: cookie jars keep no cookies of a bare IP address.
    """

    def __init__(self) -> None:
        self.cookies_sent: dict[str, list[str | None]] = {"Bearer key-a": [], "Bearer key-b": []}
        sent = self.cookies_sent

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization", "")
                sent.setdefault(authorization, []).append(self.headers.get("Cookie"))
                self.send_response(200)
                if authorization == "Bearer key-a":
                    self.send_header("Set-Cookie", "session=of-key-a; Path=/")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        super().__init__(Handler)
        self.url = self.base_url.replace("127.0.0.1", "localhost") + "/task"


def test_a_shared_sync_session_keeps_no_cookie_of_one_key_for_another():
    with _CookieSettingServer() as server:
        session = transport.new_session()
        for key in ("key-a", "key-a", "key-b"):
            transport.send(session, "GET", server.url, timeout=5, headers={"Authorization": f"Bearer {key}"})
    assert server.cookies_sent == {"Bearer key-a": [None, None], "Bearer key-b": [None]}


async def test_the_shared_async_session_keeps_no_cookie_of_one_key_for_another():
    with _CookieSettingServer() as server:
        lease = transport.SharedSessionLease.acquire()
        try:
            for key in ("key-a", "key-a", "key-b"):
                headers = {"Authorization": f"Bearer {key}"}
                async with lease.session.get(server.url, headers=headers) as response:
                    await response.read()
        finally:
            await lease.release()
    assert server.cookies_sent == {"Bearer key-a": [None, None], "Bearer key-b": [None]}
