"""Why a service could not be reached, told from real aiohttp failures over loopback (the sync ones: test_hook.py)."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from airflow_provider_videogen.unreachable import transport_failure


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _failure_of(url: str, timeout: float = 5.0) -> str:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)):
                pass
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return transport_failure(error)
    raise AssertionError(f"{url} answered")


async def test_a_refused_connection():
    assert await _failure_of(f"http://127.0.0.1:{_closed_port()}/") == "refused"


async def test_a_host_name_that_does_not_resolve():
    assert await _failure_of("http://no-such-host.invalid/") == "dns"


async def test_https_to_a_plain_http_service(sim):
    assert await _failure_of(sim.base_url.replace("http://", "https://") + "/") == "tls"


async def test_a_host_that_never_answers():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        assert await _failure_of(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.3) == "timeout"


@pytest.mark.parametrize("error", [ValueError("odd"), aiohttp.ServerDisconnectedError()])
def test_anything_else_is_named_by_its_type(error):
    assert transport_failure(error) == type(error).__name__
