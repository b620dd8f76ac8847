"""Why a service could not be reached, in one sentence: connection refused, DNS, TLS or timeout."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import requests

# aiohttp's errors, by name: this module is used where aiohttp is not imported.
_AIOHTTP_DNS = {"ClientConnectorDNSError"}
_AIOHTTP_TLS = {"ClientSSLError", "ClientConnectorSSLError", "ClientConnectorCertificateError"}


def unreachable_message(base_url: str, timeout: float, error: BaseException) -> str:
    """One sentence for a request that got no HTTP answer: the host, what failed, and what to check.

    :param base_url: the connection's base URL.
    :param timeout: the seconds one request was allowed (named when it timed out).
    :param error: the error the request raised, or the provider's error raised from it.
    """
    parts = urlsplit(base_url)
    address = parts.netloc if parts.port else f"{parts.netloc}:{443 if parts.scheme == 'https' else 80}"
    failure = transport_failure(error)
    if failure == "timeout":
        return f"Check the base URL and the network (firewall, proxy): {address} did not answer within {timeout:g} s."
    if failure == "dns":
        return f"Check the base URL's host name: {parts.hostname} could not be resolved (DNS)."
    if failure == "tls":
        return (
            "Check the base URL's scheme (http or https) and the server's certificate: "
            f"the TLS handshake with {address} failed."
        )
    if failure == "refused":
        return f"Check the base URL and that the service is running: {address} refused the connection."
    return f"Check the base URL and the network: the connection to {address} failed ({failure})."


def transport_failure(error: BaseException) -> str:
    """How a request failed below HTTP: ``timeout``, ``dns``, ``tls``, ``refused``, or the error's type name.

    Looks through the chain of causes: ``requests`` wraps urllib3's error, which wraps the socket's,
    and the provider's own error keeps the transport error as its context.
    """
    chain: list[BaseException] = []
    pending: list[object] = [error]
    while pending and len(chain) < 20:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is seen for seen in chain):
            continue
        chain.append(current)
        pending += [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
    # Exact type names, not their bases: urllib3's NewConnectionError subclasses ConnectTimeoutError.
    names = {type(e).__name__ for e in chain}
    if any(isinstance(e, (TimeoutError, requests.Timeout)) for e in chain) or any(
        name.endswith("TimeoutError") for name in names
    ):
        return "timeout"
    if any(isinstance(e, socket.gaierror) for e in chain) or names & (_AIOHTTP_DNS | {"NameResolutionError"}):
        return "dns"
    if any(isinstance(e, (ssl.SSLError, requests.exceptions.SSLError)) for e in chain) or names & _AIOHTTP_TLS:
        return "tls"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "refused"
    original = chain[1] if len(chain) > 1 else error
    return type(original).__name__
