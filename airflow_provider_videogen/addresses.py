"""Which addresses a file download may connect to: public ones, unless the connection allows more.

File URLs come from the service, and a compromised or confused service must not make a worker fetch
from an internal host: :class:`AddressPolicy` checks every address a host name resolves to, and
:mod:`~airflow_provider_videogen.transport` makes the connections go to the address it checked.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from airflow_provider_videogen.exceptions import VideoFileHostRefusedError

__all__ = ["AddressPolicy", "is_loopback_host"]


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a file download may connect to; every other address on the internet is fine.

    Refused unless allowed: loopback (``127.0.0.0/8``, ``::1``), link-local (``169.254.0.0/16``,
    ``fe80::/10``: cloud metadata services live there), private (RFC 1918, ``fc00::/7``),
    unspecified and every other address that is not globally routable. The check runs on each
    address the host name resolves to, for the first request and for every redirect, before a
    connection is opened, and the connection then goes to the address that was checked.

    :param allow_private: also allow private, link-local and other non-global addresses (and loopback).
    :param allow_loopback: allow loopback addresses (a simulator or gateway on this machine).
    """

    allow_private: bool = False
    allow_loopback: bool = False

    def refusal(self, address: str) -> str | None:
        """Why ``address`` is refused (e.g. ``"a link-local address"``), or ``None`` if it is allowed."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.allow_private or ip.is_global:
            return None
        if ip.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        if ip.is_link_local:
            return "a link-local address"
        if ip.is_unspecified:
            return "an unspecified address"
        if ip.is_private:
            return "a private address"
        return "an address that is not publicly routable"

    def resolve(self, host: str, port: int) -> list[str] | None:
        """Return the addresses of ``host``, all checked; ``None`` when it does not resolve.

        :raises VideoFileHostRefusedError: one of its addresses is refused.
        """
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            return None  # the connection attempt then reports the name error as usual
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                shown = host if host == address else f"{host} ({address})"
                raise VideoFileHostRefusedError(
                    f"Refusing to download from {shown}: it is {reason}. File URLs come from the service, "
                    "and a worker must not fetch from internal hosts on its behalf. If this file host is "
                    "meant to be on your network, set the connection extra allow_private_file_hosts to true."
                )
        return addresses


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` (a name or an address) is this machine: ``localhost``, or only loopback addresses."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).is_loopback for info in infos)
