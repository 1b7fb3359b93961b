"""Real test peers for the ACME tests: a CA built with cryptography, an authoritative DNS
server, http-01 and tls-alpn-01 responders, all on 127.0.0.1. Nothing here returns canned
bytes: the CA signs, the DNS server speaks the wire protocol, the responders serve sockets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import ipaddress
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certwarden.acme.certificates import ari_cert_id
from certwarden.acme.issuer import Issuance
from certwarden.acme.validation import ACME_IDENTIFIER_OID, ALPN
from certwarden.ca.csr import LeafKey
from certwarden.errors import CertwardenError


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class MiniCA:
    """Root -> intermediate -> leaf, plus an alternate root cross-signing the intermediate
    (so certificate download has an alternate chain to offer by Link header)."""

    PROFILES: Mapping[str, str] = {"tls-server": "TLS server, 7 days",
                                   "short": "TLS server, 1 day"}

    def __init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._ca(_name("certwarden test root"), self.root_key, None, None, now)
        self.alt_root_key = ec.generate_private_key(ec.SECP256R1())
        self.alt_root = self._ca(_name("certwarden test alt root"), self.alt_root_key,
                                 None, None, now)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = self._ca(_name("certwarden test issuing CA"), self.key,
                                     self.root, self.root_key, now)
        self.cross = self._ca(_name("certwarden test issuing CA"), self.key,
                              self.alt_root, self.alt_root_key, now)
        self.revoked: dict[int, int] = {}
        self.issued: list[x509.Certificate] = []
        self._lock = threading.Lock()

    @staticmethod
    def _ca(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
            issuer_key: ec.EllipticCurvePrivateKey | None, now: dt.datetime) -> x509.Certificate:
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(issuer.subject if issuer else subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(hours=1))
             .not_valid_after(now + dt.timedelta(days=365))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None
                                                  else 0), critical=True)
             .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                          False), critical=True)
             .add_extension(ski, critical=False))
        if issuer is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.public_key()), critical=False)  # type: ignore[arg-type]
        return b.sign(issuer_key or key, hashes.SHA256())

    @property
    def profiles(self) -> Mapping[str, str]:
        return self.PROFILES

    @property
    def root_pem(self) -> str:
        return _pem(self.root)

    def issue(self, public_key: LeafKey, *, profile: str, dns_names: Sequence[str],
              ip_addresses: Sequence[str], not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> Issuance:
        if profile not in self.PROFILES:
            raise CertwardenError(f"unknown profile {profile}")
        now = dt.datetime.now(dt.UTC)
        life = dt.timedelta(days=7 if profile == "tls-server" else 1)
        nb = max(not_before or now, now) - dt.timedelta(minutes=5)
        na = min(not_after or nb + life, nb + life)
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        cert = (x509.CertificateBuilder()
                .subject_name(_name((list(dns_names) + list(ip_addresses))[0]))
                .issuer_name(self.intermediate.subject).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(nb).not_valid_after(na)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), critical=False)
                .sign(self.key, hashes.SHA256()))
        with self._lock:
            self.issued.append(cert)
        der = cert.public_bytes(serialization.Encoding.DER)
        return Issuance(leaf_der=der, chain_der=(_der(self.intermediate),),
                        alternates=((_der(self.cross),),), serial=cert.serial_number,
                        sha256=hashlib.sha256(der).hexdigest(), ari_id=ari_cert_id(cert),
                        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc)

    def revoke(self, serial: int, *, reason: int) -> None:
        with self._lock:
            if serial in self.revoked:
                raise CertwardenError(f"serial {serial:x} is already revoked")
            self.revoked[serial] = reason

    def server_cert(self, names: Sequence[str], out_dir: Path) -> tuple[Path, Path]:
        """A TLS server certificate for the ACME server itself (cert+chain, key) as files."""
        key = ec.generate_private_key(ec.SECP256R1())
        dns_names = [n for n in names if not _is_ip(n)]
        chain = self.issue(key.public_key(), profile="tls-server",
                           dns_names=dns_names, ip_addresses=[n for n in names if _is_ip(n)])
        cert_path, key_path = out_dir / "server.pem", out_dir / "server.key"
        cert_path.write_text("".join(ssl.DER_cert_to_PEM_cert(d)
                                     for d in (chain.leaf_der, *chain.chain_der)))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        return cert_path, key_path


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# --- an authoritative DNS server ------------------------------------------------------------
class DnsZone:
    """Authoritative for ``zones``: A/AAAA of any name under them (127.0.0.1 by default, or
    per-name overrides), TXT records the test sets, SOA/NS at the apex. UDP and TCP."""

    def __init__(self, zones: Sequence[str] = ("internal", "test"),
                 txt_file: Path | None = None) -> None:
        self.zones = [dns.name.from_text(z) for z in zones]
        # Peer tools publish TXT records by appending "name value" lines (lego's exec hook).
        self.txt_file = txt_file
        self.a: dict[str, list[str]] = {}
        self.txt: dict[str, list[str]] = {}
        self.default_a = "127.0.0.1"
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def set_txt(self, name: str, value: str) -> None:
        with self._lock:
            self.txt.setdefault(name.rstrip(".").lower(), []).append(value)

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        q = query.question[0]
        qname, rdtype = q.name, q.rdtype
        key = qname.to_text(omit_final_dot=True).lower()
        self.queries.append((key, dns.rdatatype.to_text(rdtype)))
        zone = next((z for z in self.zones if qname.is_subdomain(z)), None)
        if zone is None:
            resp.set_rcode(dns.rcode.REFUSED)
            return resp.to_wire()
        soa = dns.rrset.from_text(zone, 60, "IN", "SOA",
                                  f"ns1.{zone} hostmaster.{zone} 1 60 60 600 60")
        with self._lock:
            txt = list(self.txt.get(key, ()))
            addrs = list(self.a.get(key, [self.default_a]))
        if self.txt_file is not None and self.txt_file.exists():
            for line in self.txt_file.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name.rstrip(".").lower() == key and value:
                    txt.append(value.strip())
        if rdtype == dns.rdatatype.TXT and txt:
            resp.answer.append(dns.rrset.from_text(qname, 0, "IN", "TXT",
                                                   *[f'"{t}"' for t in txt]))
        elif rdtype == dns.rdatatype.A and not key.startswith("_acme-challenge"):
            v4 = [a for a in addrs if ":" not in a]
            if v4:
                resp.answer.append(dns.rrset.from_text(qname, 0, "IN", "A", *v4))
        elif rdtype == dns.rdatatype.AAAA:
            v6 = [a for a in addrs if ":" in a]
            if v6:
                resp.answer.append(dns.rrset.from_text(qname, 0, "IN", "AAAA", *v6))
        elif rdtype == dns.rdatatype.SOA and qname == zone:
            resp.answer.append(soa)
        elif rdtype == dns.rdatatype.NS and qname == zone:
            resp.answer.append(dns.rrset.from_text(zone, 60, "IN", "NS", f"ns1.{zone}"))
        if not resp.answer:
            resp.authority.append(soa)
        return resp.to_wire()

    @contextmanager
    def serving(self, port: int = 0) -> Iterator[tuple[str, int]]:
        zone = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(zone.answer(data), self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                size = int.from_bytes(self.rfile.read(2), "big")
                out = zone.answer(self.rfile.read(size))
                self.wfile.write(len(out).to_bytes(2, "big") + out)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        for _attempt in range(20):
            # UDP picks a free port; TCP must get the same number, which may be taken.
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", port), Udp)
            try:
                tcp = socketserver.ThreadingTCPServer(("127.0.0.1", udp.server_address[1]), Tcp)
                break
            except OSError:
                udp.server_close()
                if port:
                    raise
        else:  # pragma: no cover - 20 collisions in a row
            raise RuntimeError("no port free for both UDP and TCP")
        port = udp.server_address[1]
        for srv in (udp, tcp):
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        try:
            yield "127.0.0.1", port
        finally:
            for srv in (udp, tcp):
                srv.shutdown()
                srv.server_close()


# --- challenge responders -------------------------------------------------------------------
class Http01Responder:
    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.hits: list[str] = []

    @contextmanager
    def serving(self, port: int = 0) -> Iterator[int]:
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                responder.hits.append(f"{self.headers.get('Host')}{self.path}")
                token = self.path.rsplit("/", 1)[-1]
                body = responder.tokens.get(token)
                if not self.path.startswith("/.well-known/acme-challenge/") or body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        try:
            yield srv.server_address[1]
        finally:
            srv.shutdown()
            srv.server_close()


def alpn_certificate(name: str, key_auth: str, *, critical: bool = True,
                     tmp: Path) -> tuple[Path, Path]:
    """The RFC 8737 self-signed certificate with the acmeIdentifier extension."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    digest = hashlib.sha256(key_auth.encode()).digest()
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, b"\x04\x20" + digest),
                           critical=critical)
            .sign(key, hashes.SHA256()))
    c, k = tmp / f"alpn-{name}.pem", tmp / f"alpn-{name}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


@contextmanager
def alpn_responder(cert: Path, key: Path, *, alpn: str = ALPN) -> Iterator[int]:
    """A TLS server offering only ``alpn``, presenting ``cert`` (one handshake per accept)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols([alpn])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def loop() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        t.join()
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_root(ca: MiniCA, path: Path) -> Path:
    path.write_text(ca.root_pem)
    return path


# --- a whole ACME environment for the integration tests -------------------------------------
class AcmeEnv:
    """The ACME app (real SQL store, real CA) plus a DNS server and an http-01 responder."""

    def __init__(self, *, db_url: str, settings_overrides: Mapping[str, Any] | None = None,
                 issuer: Any = None) -> None:
        self.db_url = db_url
        self.ca = MiniCA()
        self.issuer = issuer if issuer is not None else self.ca
        self.dns = DnsZone()
        self.http01 = Http01Responder()
        self.overrides = dict(settings_overrides or {})

    @contextmanager
    def running(self) -> Iterator[AcmeEnv]:
        from fastapi import FastAPI

        from certwarden.acme.context import AcmeSettings
        from certwarden.acme.validation import ValidatorSettings
        from certwarden.web.acme import build_acme_server, mount_acme

        with self.dns.serving() as (dns_host, dns_port), self.http01.serving() as http_port:
            self.resolver = f"{dns_host}:{dns_port}"
            self.http_port = http_port
            validator = self.overrides.pop("validator", None) or ValidatorSettings(
                resolver=self.resolver, http_port=http_port, tls_port=free_port(), timeout=3.0)
            self.settings = AcmeSettings(validator=validator, **self.overrides)
            self.server = build_acme_server(db_url=self.db_url, issuer=self.issuer,
                                            settings=self.settings)
            self.app = FastAPI()
            mount_acme(self.app, self.server)
            try:
                yield self
            finally:
                self.server.close()
                self.server.store.close()  # type: ignore[attr-defined]

    def http_client(self) -> Any:
        import httpx

        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url="https://acme.test")

    def acme_client(self, http: Any, **kw: Any) -> Any:
        from acme_client import AcmeClient

        return AcmeClient(http, "https://acme.test/acme/directory", poll_interval=0.02, **kw)

    def publish_http01(self, token: str, key_auth: str, _name: str) -> None:
        self.http01.tokens[token] = key_auth

    def publish_dns01(self, _token: str, key_auth: str, name: str) -> None:
        from certwarden.acme.validation import dns01_digest

        self.dns.set_txt(f"_acme-challenge.{name}", dns01_digest(key_auth))


# --- the ACME app served over real HTTPS, for real clients -----------------------------------
class LiveAcme:
    """``AcmeEnv``'s app under uvicorn with TLS from the test CA, on 127.0.0.1."""

    def __init__(self, tmp: Path, *, http_port: int | None = None, tls_port: int | None = None,
                 dns_zones: Sequence[str] = ("internal", "test"),
                 settings_overrides: Mapping[str, Any] | None = None) -> None:
        self.tmp = tmp
        self.ca = MiniCA()
        self.txt_file = tmp / "dns-txt.records"
        self.dns = DnsZone(dns_zones, txt_file=self.txt_file)
        self.http_port = http_port or free_port()
        self.tls_port = tls_port or free_port()
        self.port = free_port()
        self.overrides = dict(settings_overrides or {})
        self.root_pem = write_root(self.ca, tmp / "root.pem")

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/acme/directory"

    @contextmanager
    def running(self) -> Iterator[LiveAcme]:
        import time

        import uvicorn
        from fastapi import FastAPI

        from certwarden.acme.context import AcmeSettings
        from certwarden.acme.validation import ValidatorSettings
        from certwarden.web.acme import build_acme_server, mount_acme

        cert, key = self.ca.server_cert(["127.0.0.1", "localhost"], self.tmp)
        with self.dns.serving() as (dns_host, dns_port):
            self.resolver = f"{dns_host}:{dns_port}"
            settings = AcmeSettings(validator=ValidatorSettings(
                resolver=self.resolver, http_port=self.http_port, tls_port=self.tls_port,
                timeout=5.0), **self.overrides)
            self.server = build_acme_server(db_url=f"sqlite:///{self.tmp / 'acme.db'}",
                                            issuer=self.ca, settings=settings)
            app = FastAPI()
            mount_acme(app, self.server)
            config = uvicorn.Config(app, host="127.0.0.1", port=self.port, ssl_certfile=str(cert),
                                    ssl_keyfile=str(key), log_level="warning", lifespan="off",
                                    ws="none")
            web = uvicorn.Server(config)
            thread = threading.Thread(target=web.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 10
            while not web.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("uvicorn did not start")
                time.sleep(0.02)
            try:
                yield self
            finally:
                web.should_exit = True
                thread.join(10)
                self.server.close()
                self.server.store.close()  # type: ignore[attr-defined]

    def tool_env(self, **extra: str) -> dict[str, str]:
        """The environment for a peer tool: this machine's global CA bundle variables are
        replaced so the tool trusts our root and nothing else."""
        import os

        env = {k: v for k, v in os.environ.items()
               if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE",
                            "LEGO_CA_CERTIFICATES")}
        env.update(extra)
        return env


@contextmanager
def webroot_server(root: Path, port: int) -> Iterator[Path]:
    """Serve ``root`` over HTTP on 127.0.0.1:``port`` (the webroot http-01 clients write to);
    yields the ``.well-known/acme-challenge`` directory."""
    import functools

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    challenge_dir = root / ".well-known" / "acme-challenge"
    challenge_dir.mkdir(parents=True, exist_ok=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                          functools.partial(Quiet, directory=str(root)))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield challenge_dir
    finally:
        srv.shutdown()
        srv.server_close()
