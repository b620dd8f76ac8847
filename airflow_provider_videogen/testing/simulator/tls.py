"""HTTPS for the simulator: a throwaway certificate authority, made at start, and a certificate from it.

Real services are HTTPS; serving the simulator over HTTPS lets tests and benchmarks see what a TLS
session and its handshakes cost. Clients trust it the normal way, through a CA bundle: point
``SSL_CERT_FILE`` (``aiohttp``, the standard library) and ``REQUESTS_CA_BUNDLE`` (``requests``) at
the CA file. Certificate verification is never switched off. Needs the ``trustme`` package (the
``dev`` and ``bench`` extras).
"""

from __future__ import annotations

import ssl
from pathlib import Path

#: The names the certificate is valid for: the simulator serves on loopback.
CERTIFICATE_NAMES = ("127.0.0.1", "localhost", "::1")


def server_context(ca_file: str | Path) -> ssl.SSLContext:
    """Make a new CA and a certificate for loopback; write the CA's certificate (PEM) to ``ca_file``.

    :returns: the server side's SSL context, holding the certificate and its key.
    """
    try:
        import trustme
    except ImportError:
        raise RuntimeError(
            "The simulator's HTTPS mode needs the trustme package: pip install 'airflow-provider-videogen[dev]' "
            "(or pip install trustme)."
        ) from None
    authority = trustme.CA()
    certificate = authority.issue_cert(*CERTIFICATE_NAMES)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    authority.cert_pem.write_to_path(str(ca_file))
    return context


def client_context(ca_file: str | Path) -> ssl.SSLContext:
    """Return a client SSL context that trusts the simulator's CA (and verifies as usual)."""
    return ssl.create_default_context(cafile=str(ca_file))
