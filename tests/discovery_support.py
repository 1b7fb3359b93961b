"""Helpers for the discovery and inventory tests: real certificates, real servers on loopback.

Everything here is real: certificates made with cryptography, TLS servers built on the
standard library's ``ssl`` module, listening on 127.0.0.1 in a background thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certwarden.records import Location, Sighting
from certwarden.x509 import Certificate


@dataclass(frozen=True, slots=True, kw_only=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: bytes | None = None) -> bytes:
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password
            else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8, enc)

    @property
    def record(self) -> Certificate:
        return Certificate.from_der(self.der)


def issue(cn: str, *, issuer: Issued | None = None, ca: bool = False, rsa_bits: int = 0,
          days: int = 30) -> Issued:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits) if rsa_bits
        else ec.generate_private_key(ec.SECP256R1()))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(cert=cert, key=key)


def write_pem(path: Path, *items: bytes, mode: int = 0o644) -> Path:
    path.write_bytes(b"".join(items))
    path.chmod(mode)
    return path


def server_context(tmp: Path, leaf: Issued, *chain: Issued) -> ssl.SSLContext:
    name = leaf.record.sha256[:12]
    cert_file = write_pem(tmp / f"{name}.crt", leaf.pem, *(c.pem for c in chain))
    key_file = write_pem(tmp / f"{name}.key", leaf.key_pem(), mode=0o600)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def sighting(cert: Issued, uri_host: str = "127.0.0.1", port: int = 443,
             chain: tuple[Issued, ...] = (), at: dt.datetime | None = None) -> Sighting:
    return Sighting(certificate=cert.record, location=Location.tls(uri_host, port),
                    seen_at=at or dt.datetime.now(dt.UTC),
                    chain=tuple(c.record for c in chain), tls_version="TLSv1.3")


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Loopback:
    """An asyncio loop in a thread serving any number of listeners on 127.0.0.1."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._servers: list[asyncio.base_events.Server] = []
        self._thread.start()

    def serve(self, handler: Handler | None = None, *, tls: ssl.SSLContext | None = None,
              port: int = 0) -> int:
        """Listen; ``handler`` None with ``tls`` = a TLS server that says nothing."""

        inner = handler or _idle

        async def safe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # A test server must survive whatever the scanner does (reset, abort, cancel).
            try:
                await inner(reader, writer)
            except (OSError, asyncio.CancelledError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.transport.abort()

        async def start() -> asyncio.base_events.Server:
            return await asyncio.start_server(safe, "127.0.0.1", port, ssl=tls,
                                              ssl_handshake_timeout=5 if tls else None)

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def close(self) -> None:
        async def stop() -> None:
            for s in self._servers:
                s.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0.05)  # let aborted transports release their sockets

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
