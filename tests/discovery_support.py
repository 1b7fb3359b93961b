"""Helpers for the discovery and inventory tests: real certificates, real servers on loopback.

Everything here is real: certificates made with cryptography, TLS servers built on the
standard library's ``ssl`` module, listening on 127.0.0.1 in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
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
                writer.close()  # an orderly FIN, as a real server closes
            except (OSError, asyncio.CancelledError, asyncio.IncompleteReadError):
                writer.transport.abort()

        async def start() -> asyncio.base_events.Server:
            return await asyncio.start_server(safe, "127.0.0.1", port, ssl=tls,
                                              ssl_handshake_timeout=5 if tls else None)

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def stop(self, port: int) -> None:
        """Stop listening on ``port`` (a location that goes away)."""

        async def stop_one() -> None:
            for server in self._servers:
                if server.sockets and server.sockets[0].getsockname()[1] == port:
                    server.close()
                    await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop_one(), self.loop).result(10)

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


# --- minimal STARTTLS servers: the plaintext dialogue, then a real TLS handshake -----------

async def _upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   ctx: ssl.SSLContext) -> None:
    await writer.drain()
    await writer.start_tls(ctx)
    await reader.read(1)  # hold the session until the client hangs up


def starttls_server(proto: str, ctx: ssl.SSLContext, *, offer: bool = True) -> Handler:
    """A minimal server speaking ``proto``'s upgrade dialogue (RFC 3207, 2595, 4217, 4511,
    6120; PostgreSQL and MySQL wire protocols); ``offer=False`` declines the upgrade."""

    async def smtp(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"220-mail.test ESMTP minimal\r\n220 second greeting line\r\n")
        await r.readline()  # EHLO
        caps = b"250-mail.test\r\n250-PIPELINING\r\n" + (b"250 STARTTLS\r\n" if offer
                                                           else b"250 8BITMIME\r\n")
        w.write(caps)
        line = await r.readline()
        if line.strip().upper() == b"STARTTLS" and offer:
            w.write(b"220 2.0.0 Ready to start TLS\r\n")
            await _upgrade(r, w, ctx)
        else:
            w.write(b"502 5.5.1 not implemented\r\n")

    async def imap(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
        tag = (await r.readline()).split(b" ", 1)[0]
        if offer:
            w.write(b"* some untagged noise\r\n" + tag + b" OK Begin TLS now\r\n")
            await _upgrade(r, w, ctx)
        else:
            w.write(tag + b" BAD STARTTLS unavailable\r\n")

    async def pop3(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"+OK POP3 ready\r\n")
        await r.readline()
        w.write(b"+OK Begin TLS\r\n" if offer else b"-ERR no\r\n")
        if offer:
            await _upgrade(r, w, ctx)

    async def ftp(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"220 FTP server ready\r\n")
        await r.readline()
        w.write(b"234 AUTH TLS successful\r\n" if offer else b"500 no\r\n")
        if offer:
            await _upgrade(r, w, ctx)

    async def ldap(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = await r.readexactly(2)
        await r.readexactly(head[1])
        code = b"\x00" if offer else b"\x02"  # success / protocolError
        w.write(b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01" + code + b"\x04\x00\x04\x00")
        if offer:
            await _upgrade(r, w, ctx)

    async def xmpp(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readuntil(b"version='1.0'>")
        feature = (b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                   if offer else b"<mechanisms/>")
        w.write(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
                b"<stream:features>" + feature + b"</stream:features>")
        if offer:
            await r.readuntil(b"/>")
            w.write(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            await _upgrade(r, w, ctx)

    async def mysql(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        caps = 0x0200 | 0x8000 | (0x0800 if offer else 0)
        body = (b"\x0a" + b"8.0.36-minimal\x00" + (7).to_bytes(4, "little") + b"abcdefgh\x00"
                + caps.to_bytes(2, "little") + b"\x21" + b"\x02\x00" + b"\x00\x00"
                + b"\x15" + b"\x00" * 10 + b"ijklmnopqrst\x00" + b"mysql_native_password\x00")
        w.write(len(body).to_bytes(3, "little") + b"\x00" + body)
        if offer:
            head = await r.readexactly(4)
            await r.readexactly(int.from_bytes(head[:3], "little"))
            await _upgrade(r, w, ctx)
        else:
            await r.read(1)

    async def postgres(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readexactly(8)
        w.write(b"S" if offer else b"N")
        if offer:
            await _upgrade(r, w, ctx)

    return {"smtp": smtp, "imap": imap, "pop3": pop3, "ftp": ftp, "ldap": ldap,
            "xmpp": xmpp, "mysql": mysql, "postgres": postgres}[proto]


class BlackHole:
    """Listening sockets on ``host`` whose accept queue is full: SYNs go unanswered, so a
    connect times out exactly as against a filtered or dead host. Real kernel behaviour."""

    def __init__(self, host: str, count: int) -> None:
        self.host = host
        self._socks: list[socket.socket] = []
        self.ports: list[int] = []
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            s.listen(0)
            port = int(s.getsockname()[1])
            self._socks.append(s)
            self.ports.append(port)
            for _ in range(4):  # fill the (backlog + 1) queue and the SYN slot
                c = socket.socket()
                c.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    c.connect((host, port))
                self._socks.append(c)

    def close(self) -> None:
        for s in self._socks:
            s.close()
