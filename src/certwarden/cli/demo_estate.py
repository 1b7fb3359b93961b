"""The sandbox estate: TLS services on 127.0.0.1 and a folder of files, each with the exact
set of rules it must trip (``EXPECTED``), so the demo doubles as a precision/recall check.

Every service binds 127.0.0.1 on a port the OS picks; nothing leaves loopback. Keys of the
services live in a private directory (0700) that the file sweep never sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from certwarden.cli.demo_forge import Forged, forge, make_key

HOST = "127.0.0.1"
IP_SAN = (HOST,)
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    name: str
    leaf: Forged
    chain: tuple[Forged, ...] = ()  # sent after the leaf
    expected: frozenset[str] = frozenset()
    starttls: str | None = None  # "smtp"
    sni: str | None = None  # scanned as ``sni@127.0.0.1:port`` (the name clients use)
    rescan: bool = False  # found by the second scan, of other ports of the same host


@dataclass(frozen=True, slots=True, kw_only=True)
class FileItem:
    name: str  # file name in the folder
    cert: Forged
    expected: frozenset[str] = frozenset()
    key_mode: int | None = None  # write the key beside it with this mode


@dataclass(slots=True)
class DemoEstate:
    root: Forged
    services: list[Service] = field(default_factory=list)
    files: list[FileItem] = field(default_factory=list)
    policy_findings: frozenset[str] = frozenset({"exception-expired"})
    crl_der: bytes = b""  # the issuing CA's CRL, served by ``CrlPublisher``


def _rules(*names: str) -> frozenset[str]:
    return frozenset(names)


def build_estate(now: dt.datetime | None = None, *, crl_url: str | None = None) -> DemoEstate:
    """Forge every certificate of the estate (about a second of key generation).

    ``crl_url``: where the issuing CA's CRL is published (``CrlPublisher``); the revoked
    service's leaf points there, and the CRL lists it.
    """
    now = now or dt.datetime.now(dt.UTC)
    nb = now - _DAY
    root = forge(subject="CN=Demo Corp Root CA,O=Demo Corp", sans=(), ca=True,
                 not_before=now - 30 * _DAY, days=3650)
    issuing = forge(subject="CN=Demo Corp Issuing CA,O=Demo Corp", sans=(), ca=True,
                    issuer=root, not_before=now - 30 * _DAY, days=1000)
    lab_root = forge(subject="CN=Lab Root CA,O=Lab", sans=(), ca=True,
                     not_before=now - 30 * _DAY, days=3650)
    lab_issuing = forge(subject="CN=Lab Issuing CA,O=Lab", sans=(), ca=True, issuer=lab_root,
                        not_before=now - 30 * _DAY, days=1000)

    def leaf(cn: str, **kw: object) -> Forged:
        args: dict[str, object] = {"subject": f"CN={cn},O=Demo Corp",
                                   "sans": (f"{cn}", *IP_SAN), "issuer": issuing,
                                   "not_before": nb, "days": 60}
        args.update(kw)
        return forge(**args)  # type: ignore[arg-type]

    shared_key = make_key("ec256")
    sprawled = leaf("shared.demo.test")
    e = DemoEstate(root=root)
    add = e.services.append
    add(Service(name="good", leaf=leaf("www.demo.test"), chain=(issuing,)))
    add(Service(name="self-signed", leaf=forge(subject="CN=wiki.demo.test",
                sans=("wiki.demo.test", *IP_SAN), not_before=nb, days=60),
                expected=_rules("self-signed")))
    add(Service(name="shadow", leaf=forge(subject="CN=forgotten.demo.test",
                sans=("forgotten.demo.test", *IP_SAN), not_before=nb, days=60),
                expected=_rules("self-signed", "shadow-certificate")))
    add(Service(name="expired", leaf=leaf("old.demo.test", not_before=now - 100 * _DAY,
                                          days=50), chain=(issuing,), expected=_rules("expired")))
    add(Service(name="not-yet-valid", leaf=leaf("future.demo.test",
                                                not_before=now + 3 * _DAY),
                chain=(issuing,), expected=_rules("not-yet-valid")))
    add(Service(name="expiring-soon", leaf=leaf("soon.demo.test", not_before=now - 80 * _DAY,
                                                days=90),
                chain=(issuing,), expected=_rules("expiring-soon")))
    add(Service(name="validity-too-long", leaf=leaf("long.demo.test", days=365),
                chain=(issuing,), expected=_rules("validity-too-long")))
    add(Service(name="never-expires", leaf=leaf(
        "forever.demo.test", not_after=dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),
        chain=(issuing,), expected=_rules("never-expires", "validity-too-long")))
    add(Service(name="weak-key", leaf=leaf("rsa1024.demo.test", key="rsa1024"),
                chain=(issuing,), expected=_rules("weak-key")))
    add(Service(name="weak-signature", leaf=leaf("sha1.demo.test", hash_name="sha1"),
                chain=(issuing,), expected=_rules("weak-signature")))
    # Reached by IP without SNI: no name to check, so no hostname-mismatch (issue 11).
    add(Service(name="missing-san", leaf=leaf(HOST, sans=()), chain=(issuing,),
                expected=_rules("missing-san")))
    add(Service(name="cn-not-in-san", leaf=leaf("legacy.demo.test",
                                                sans=("app.demo.test", *IP_SAN)),
                chain=(issuing,), expected=_rules("cn-not-in-san")))
    add(Service(name="wildcard", leaf=leaf("*.demo.test"), chain=(issuing,),
                expected=_rules("wildcard")))
    add(Service(name="hostname-mismatch", leaf=leaf("db.demo.test", sans=("db.demo.test",)),
                chain=(issuing,), sni="www.demo.test", expected=_rules("hostname-mismatch")))
    add(Service(name="ca-as-leaf", leaf=leaf("ca.demo.test", ca=True), chain=(issuing,),
                expected=_rules("ca-cert-served-as-leaf")))
    add(Service(name="incomplete-chain", leaf=leaf("partial.demo.test"),
                expected=_rules("incomplete-chain")))
    add(Service(name="private-chain", leaf=leaf("lab.demo.test", issuer=lab_issuing),
                chain=(lab_issuing, lab_root), expected=_rules("untrusted-chain")))
    # Configured correctly: leaf + intermediate, the root left out (clients hold it). The Lab
    # root is not trusted here, so untrusted-chain (naming it), not incomplete-chain.
    add(Service(name="private-chain-no-root", leaf=leaf("lab2.demo.test", issuer=lab_issuing),
                chain=(lab_issuing,), rescan=True,
                expected=_rules("untrusted-chain")))
    # What `openssl req -x509 -days 825` makes: self-signed AND CA:TRUE, served as the leaf;
    # judged as the leaf it is used as (issue 11).
    add(Service(name="req-x509", leaf=forge(subject="CN=intranet.demo.test", ca=True,
                sans=("intranet.demo.test", *IP_SAN), not_before=nb, days=825),
                rescan=True, expected=_rules("self-signed", "ca-cert-served-as-leaf",
                                             "validity-too-long")))
    long_chain = [issuing]
    for i in range(9):  # nine intermediates: one more than verifiers build
        long_chain.append(forge(subject=f"CN=Demo Tier {i},O=Demo Corp", sans=(), ca=True,
                                issuer=long_chain[-1], not_before=now - 30 * _DAY, days=900))
    add(Service(name="path-too-long", leaf=leaf("deep.demo.test", issuer=long_chain[-1]),
                chain=tuple(reversed(long_chain)), expected=_rules("path-too-long")))
    # CA/Browser Forum BR shapes the path builder lets through.
    add(Service(name="no-eku", leaf=leaf("noeku.demo.test", eku=()), chain=(issuing,),
                expected=_rules("leaf-eku")))
    add(Service(name="wildcard-public-suffix", leaf=leaf("*.test"), chain=(issuing,),
                expected=_rules("wildcard", "wildcard-public-suffix")))
    add(Service(name="ip-cn-leading-zeros", leaf=leaf("127.000.000.001", sans=IP_SAN),
                chain=(issuing,), expected=_rules("ip-name-form")))
    revoked_serial = 0x5EED_0001
    if crl_url:
        add(Service(name="revoked", leaf=leaf("revoked.demo.test", serial=revoked_serial,
                                              crl_url=crl_url),
                    chain=(issuing,), expected=_rules("revoked")))
        e.crl_der = _crl(issuing, now, revoked_serial)
    add(Service(name="bad-serial", leaf=leaf("serial.demo.test", serial=1 << 165),
                chain=(issuing,), expected=_rules("bad-serial")))
    add(Service(name="placeholder-smtp", starttls="smtp", leaf=leaf(
        "mail.demo.test", subject="CN=mail.demo.test,O=Internet Widgits Pty Ltd"),
        chain=(issuing,), expected=_rules("placeholder-subject")))
    add(Service(name="self-issued", leaf=forge(
        subject="CN=appliance.demo.test", sans=("appliance.demo.test", *IP_SAN),
        not_before=nb, days=60, self_issued_bad_signature=True),
        expected=_rules("self-issued-unverifiable")))
    for n in ("a", "b"):
        add(Service(name=f"key-reuse-{n}", leaf=leaf(f"reuse-{n}.demo.test", key=shared_key),
                    chain=(issuing,), expected=_rules("key-reuse")))
    for i in range(3):
        add(Service(name=f"sprawl-{i}", leaf=sprawled, chain=(issuing,),
                    expected=_rules("cert-sprawl")))

    f = e.files.append
    f(FileItem(name="app.pem", cert=leaf("files.demo.test"), key_mode=0o644,
               expected=_rules("private-key-exposed")))
    f(FileItem(name="api.pem", cert=leaf("api.demo.test"), key_mode=0o600,
               expected=_rules("private-key-unencrypted")))
    f(FileItem(name="demo-root.pem", cert=root))
    f(FileItem(name="root-with-eku.pem", cert=forge(
        subject="CN=Appliance Root,O=Demo Corp", sans=(), ca=True, eku=("serverAuth",),
        eku_on_ca=True, not_before=now - 30 * _DAY, days=3650),
        expected=_rules("root-profile")))
    f(FileItem(name="old-v1.pem", cert=leaf("v1.demo.test", version=1),
               expected=_rules("v1-certificate", "missing-san")))
    f(FileItem(name="legacy-sha1.pem", cert=leaf("sha1-file.demo.test", hash_name="sha1"),
               expected=_rules("weak-signature")))
    f(FileItem(name="excepted-selfsigned.pem", cert=forge(
        subject="CN=printer.demo.test", sans=("printer.demo.test",), not_before=nb, days=60)))
    return e


def _crl(issuer: Forged, now: dt.datetime, *serials: int) -> bytes:
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization

    b = (cx509.CertificateRevocationListBuilder()
         .issuer_name(cx509.load_der_x509_certificate(issuer.der).subject)
         .last_update(now - _DAY).next_update(now + 7 * _DAY)
         .add_extension(cx509.CRLNumber(1), critical=False))
    for serial in serials:
        b = b.add_revoked_certificate(cx509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(now - _DAY).build())
    return b.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


class CrlPublisher:
    """The issuing CA's CRL over HTTP on 127.0.0.1 (bound first: the leaves carry its URL)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        publisher = self
        self.body = b""

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass  # the demo prints its own summary

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(publisher.body)))
                self.end_headers()
                self.wfile.write(publisher.body)

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self._server.server_address[1]}/issuing.crl"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self, body: bytes) -> None:
        self.body = body
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def policy_yaml(estate: DemoEstate, folder: Path, anchor: Path, ports: dict[str, int],
                today: dt.date) -> str:
    """The demo's policy: trusts the Demo Corp root, names owners, carries two exceptions."""
    shadow = ports["shadow"]
    owners = "\n".join(
        f'  - {{match: "tls://{HOST}:{p}{tail}", team: web, contact: web@demo.test}}'
        for name, p in sorted(ports.items()) if name != "shadow" for tail in ("", "?*"))
    return f"""\
# certwarden demo policy (written by `certwarden demo`)
version: 1
thresholds:
  expiring_soon_days: 30
  cert_sprawl_locations: 3
trust: none
trust_anchors: ["{anchor}"]
owners:
{owners}
  - {{match: "file://{folder}/*", team: storage, contact: storage@demo.test}}
# tls://{HOST}:{shadow} has no owner on purpose: it is the shadow certificate.
revocation:
  fetch: true                  # the demo's CRL is published on loopback
  allow: ["{HOST}/32"]
exceptions:
  - location: "file://{folder}/excepted-selfsigned.pem"
    rules: [self-signed]
    reason: printer firmware cannot take another certificate until the Q1 upgrade
    owner: facilities
    expires: {(today + dt.timedelta(days=90)).isoformat()}
  - location: "tls://{HOST}:1"
    reason: decommissioned service, exception left behind
    owner: web
    expires: {(today - dt.timedelta(days=10)).isoformat()}
"""


def write_folder(estate: DemoEstate, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for item in estate.files:
        (folder / item.name).write_bytes(item.cert.pem())
        if item.key_mode is not None:
            key = folder / (item.name.rsplit(".", 1)[0] + ".key")
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(item.cert.key_pem())
            os.chmod(key, item.key_mode)  # deliberately exposed: that is the finding


# ---- the servers: one asyncio loop in a thread, one listener per service ----

class Sandbox:
    """Starts every service on 127.0.0.1; ``ports`` maps service name -> port."""

    def __init__(self, estate: DemoEstate, keydir: Path) -> None:
        self.estate = estate
        self.keydir = keydir
        self.ports: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox",
                                        daemon=True)
        self._servers: list[asyncio.Server] = []

    def _context(self, svc: Service) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # The sandbox serves weak keys and SHA-1 on purpose; OpenSSL's default level refuses.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        cert = self.keydir / f"{svc.name}.pem"
        key = self.keydir / f"{svc.name}.key"
        cert.write_bytes(svc.leaf.pem() + b"".join(c.pem() for c in svc.chain))
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(svc.leaf.key_pem())
        ctx.load_cert_chain(str(cert), str(key))
        return ctx

    async def _start(self) -> None:
        for svc in self.estate.services:
            ctx = self._context(svc)
            if svc.starttls == "smtp":
                server = await asyncio.start_server(_smtp_handler(ctx), HOST, 0)
            else:
                server = await asyncio.start_server(_tls_handler, HOST, 0, ssl=ctx,
                                                    ssl_handshake_timeout=5)
            self._servers.append(server)
            self.ports[svc.name] = server.sockets[0].getsockname()[1]

    def start(self) -> None:
        self.keydir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    async def _stop(self) -> None:
        for s in self._servers:
            s.close()
        for s in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 2)

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def endpoints(self) -> Iterator[tuple[Service, int]]:
        for svc in self.estate.services:
            yield svc, self.ports[svc.name]


async def _tls_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.read(1024), 2)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


def _smtp_handler(ctx: ssl.SSLContext):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220 mail.demo.test ESMTP certwarden-sandbox\r\n")
            await writer.drain()
            while True:
                line = await asyncio.wait_for(reader.readline(), 5)
                if not line:
                    break
                verb = line.strip().upper()
                if verb.startswith((b"EHLO", b"HELO")):
                    writer.write(b"250-mail.demo.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                elif verb == b"STARTTLS":
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    await writer.start_tls(ctx)
                    await asyncio.wait_for(reader.read(1024), 2)
                    break
                elif verb == b"QUIT":
                    writer.write(b"221 Bye\r\n")
                    break
                else:
                    writer.write(b"502 5.5.2 Command not recognised\r\n")
                await writer.drain()
        except (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    return handle
