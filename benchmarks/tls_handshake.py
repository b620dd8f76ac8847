"""What a new HTTPS session per poll costs the client, against one shared session.

    python benchmarks/tls_handshake.py

The simulator speaks plain HTTP, so in ``run.py`` the ``HttpAsyncHook`` loop (a new
``aiohttp.ClientSession``, hence a new connection, per poll) pays only a loopback TCP connect. Real
video APIs are HTTPS, where each new connection also costs a TLS handshake. This serves a small JSON
answer over TLS (self-signed certificate, in a process of its own) and prints the client's CPU time
per request both ways, over plain HTTP and over HTTPS.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REQUESTS = 1000


def serve(cert: str, key: str, tls_port: int, plain_port: int) -> None:
    """Serve the same answer over HTTPS and over plain HTTP, until terminated."""
    from aiohttp import web

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def task(_request: web.Request) -> web.Response:
        return web.json_response({"id": "cgt-1", "status": "running"})

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/task", task)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", tls_port, ssl_context=context).start()
        await web.TCPSite(runner, "127.0.0.1", plain_port).start()
        await asyncio.Event().wait()

    asyncio.run(run())


def make_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def measure(url: str, cafile: Path) -> None:
    import aiohttp

    context: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(cafile)) if url.startswith("https") else False
    )
    shared = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))

    async def with_shared() -> None:
        async with shared.get(url) as response:
            await response.json()

    async def with_new() -> None:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
            session.get(url) as response,
        ):
            await response.json()

    try:
        for label, call in (("shared session", with_shared), ("new session per request", with_new)) * 2:
            start = time.process_time()
            for _ in range(REQUESTS):
                await call()
            cpu = 1e6 * (time.process_time() - start) / REQUESTS
            print(f"{url.split(':')[0]:5} {label:24}: {cpu:5.0f} µs of client CPU per request")
    finally:
        await shared.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> int:
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        cert, key = make_certificate(Path(folder))
        tls_port, plain_port = free_port(), free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "serve", str(cert), str(key), str(tls_port), str(plain_port)]
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", plain_port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            asyncio.run(measure(f"http://localhost:{plain_port}/task", cert))
            asyncio.run(measure(f"https://localhost:{tls_port}/task", cert))
        finally:
            server.terminate()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
