"""Challenge validation: http-01, dns-01 (RFC 8555 §8.3-8.4) and tls-alpn-01 (RFC 8737).

Names resolve through a configurable DNS server (``resolver="127.0.0.1:5353"``) or the
system resolver; http-01 and tls-alpn-01 responders are reached on configurable ports (80
and 443 by default) so tests and air-gapped sites can run everything on loopback. Every
address is checked against an operator allowlist before we connect: the validator must not
become a way to probe networks the operator did not mean to expose.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from certwarden.acme.jws import b64e
from certwarden.acme.model import ChallengeType, Identifier, IdentifierType
from certwarden.acme.problems import AcmeProblem, ProblemType

ACME_IDENTIFIER_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
ALPN = "acme-tls/1"
MAX_BODY = 64 * 1024  # a key authorization is < 200 bytes; anything huge is not an answer
MAX_REDIRECTS = 10  # Boulder's limit too: enough for any real setup, ends a redirect loop
# Default allowlist: the private ranges an internal CA validates in. Public space is opt-in.
PRIVATE_NETWORKS = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                    "::1/128", "fc00::/7")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def key_authorization(token: str, thumbprint: str) -> str:
    return f"{token}.{thumbprint}"


def dns01_digest(key_auth: str) -> str:
    return b64e(hashlib.sha256(key_auth.encode("ascii")).digest())


def parse_hostport(text: str, default_port: int = 53) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or host.endswith(":") or (host.count(":") and not host.startswith("[")):
        host, port = text, str(default_port)  # a bare name or bare IPv6 address
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(f"resolver must be IP[:port], got {text!r}") from None
    if not 0 < number < 65536:
        raise ValueError(f"resolver port must be 1-65535, got {text!r}")
    return host, number


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatorSettings:
    resolver: str | None = None  # "IP:port"; None = the system resolver
    http_port: int = 80
    tls_port: int = 443
    allow: tuple[str, ...] = PRIVATE_NETWORKS
    timeout: float = 5.0
    networks: tuple[IPNetwork, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in self.allow)
        object.__setattr__(self, "networks", nets)
        if self.resolver:
            parse_hostport(self.resolver)


class Validator:
    def __init__(self, settings: ValidatorSettings) -> None:
        self.settings = settings

    # resolution -------------------------------------------------------------------------
    def _query(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[str]:
        assert self.settings.resolver
        host, port = parse_hostport(self.settings.resolver)
        q = dns.message.make_query(dns.name.from_text(name), rdtype)
        try:
            resp = dns.query.udp(q, host, port=port, timeout=self.settings.timeout)
            if resp.flags & dns.flags.TC:
                resp = dns.query.tcp(q, host, port=port, timeout=self.settings.timeout)
        except (dns.exception.DNSException, OSError) as exc:
            raise AcmeProblem(ProblemType.DNS, f"DNS query {name} {rdtype.name} failed: {exc}",
                              ) from None
        if resp.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise AcmeProblem(ProblemType.DNS, f"DNS query {name} {rdtype.name} answered "
                              f"{dns.rcode.to_text(resp.rcode())}")
        out: list[str] = []
        for rrset in resp.answer:
            if rrset.rdtype != rdtype:
                continue
            for rd in rrset:
                if rdtype == dns.rdatatype.TXT:
                    out.append(b"".join(rd.strings).decode("utf-8", "replace"))
                else:
                    out.append(rd.address)
        return out

    def resolve(self, ident: Identifier) -> list[IPAddr]:
        if ident.type == IdentifierType.IP:
            texts = [ident.value]
        elif self.settings.resolver:
            texts = self._query(ident.value, dns.rdatatype.A) + self._query(
                ident.value, dns.rdatatype.AAAA)
        else:
            try:
                infos = socket.getaddrinfo(ident.value, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise AcmeProblem(ProblemType.DNS, f"cannot resolve {ident.value}: {exc}") from None
            texts = [str(info[4][0]) for info in infos]
        if not texts:
            raise AcmeProblem(ProblemType.DNS, f"no A/AAAA records for {ident.value}")
        addrs = list(dict.fromkeys(ipaddress.ip_address(t) for t in texts))
        allowed = [a for a in addrs if any(a in n for n in self.settings.networks)]
        if not allowed:
            raise AcmeProblem(ProblemType.REJECTED_IDENTIFIER,
                              f"{ident.value} resolves to {', '.join(map(str, addrs))}, outside "
                              "the validation allowlist")
        return allowed

    # the three challenge types ----------------------------------------------------------
    def validate(self, kind: ChallengeType, ident: Identifier, token: str, key_auth: str) -> None:
        """Raise an ``AcmeProblem`` unless the challenge is answered correctly."""
        if kind == ChallengeType.HTTP_01:
            self._http01(ident, token, key_auth)
        elif kind == ChallengeType.DNS_01:
            self._dns01(ident, key_auth)
        else:
            self._tls_alpn01(ident, key_auth)

    def _http01(self, ident: Identifier, token: str, key_auth: str) -> None:
        host = ident.value
        url = f"http://{host}/.well-known/acme-challenge/{token}"
        last: AcmeProblem | None = None
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise AcmeProblem(ProblemType.CONNECTION, f"redirect to unsupported URL {url}")
            target = Identifier(type=_ident_type(parts.hostname), value=parts.hostname)
            port = self.settings.http_port if parts.scheme == "http" else self.settings.tls_port
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            status, location, body = None, None, b""
            for addr in self.resolve(target):
                try:
                    status, location, body = self._http_get(parts.scheme, str(addr), port,
                                                            parts.hostname, path)
                    break
                except OSError as exc:
                    last = AcmeProblem(ProblemType.CONNECTION,
                                       f"{parts.scheme}://{addr}:{port}{path}: {exc}")
            if status is None:
                assert last is not None
                raise last
            if status in (301, 302, 303, 307, 308) and location:
                url = (location if "://" in location
                       else f"{parts.scheme}://{parts.netloc}{location}")
                continue
            if status != 200:
                raise AcmeProblem(ProblemType.UNAUTHORIZED,
                                  f"http-01: {url} answered HTTP {status}",
                                  identifier=ident.as_dict())
            got = body.decode("utf-8", "replace").strip()
            if got != key_auth:
                raise AcmeProblem(ProblemType.INCORRECT_RESPONSE,
                                  f"http-01: {url} answered {got[:80]!r}, not the key "
                                  "authorization",
                                  identifier=ident.as_dict())
            return
        raise AcmeProblem(ProblemType.CONNECTION, f"http-01: too many redirects from {host}")

    def _http_get(self, scheme: str, addr: str, port: int, host: str, path: str
                  ) -> tuple[int, str | None, bytes]:
        conn: http.client.HTTPConnection
        if scheme == "https":
            # §8.3: a redirect to https is followed without checking the certificate.
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(addr, port, timeout=self.settings.timeout,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection(addr, port, timeout=self.settings.timeout)
        try:
            conn.request("GET", path, headers={"Host": host, "User-Agent": "certwarden-acme-va",
                                               "Accept": "*/*", "Connection": "close"})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Location"), resp.read(MAX_BODY)
        except http.client.HTTPException as exc:
            raise OSError(f"bad HTTP response: {exc!r}") from None
        finally:
            conn.close()

    def _dns01(self, ident: Identifier, key_auth: str) -> None:
        name = f"_acme-challenge.{ident.value}"
        want = dns01_digest(key_auth)
        if self.settings.resolver:
            records = self._query(name, dns.rdatatype.TXT)
        else:
            try:
                answer = dns.resolver.resolve(name, "TXT", lifetime=self.settings.timeout)
                records = [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
            except dns.exception.DNSException as exc:
                raise AcmeProblem(ProblemType.DNS, f"TXT {name}: {exc}") from None
        if want not in records:
            raise AcmeProblem(ProblemType.INCORRECT_RESPONSE,
                              f"dns-01: no TXT record at {name} matches the key authorization "
                              f"(found {len(records)})", identifier=ident.as_dict())

    def _tls_alpn01(self, ident: Identifier, key_auth: str) -> None:
        digest = hashlib.sha256(key_auth.encode("ascii")).digest()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # RFC 8737: the certificate is self-signed on purpose
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols([ALPN])
        last: AcmeProblem | None = None
        for addr in self.resolve(ident):
            try:
                with socket.create_connection((str(addr), self.settings.tls_port),
                                              timeout=self.settings.timeout) as raw, \
                        ctx.wrap_socket(raw, server_hostname=ident.value) as tls:
                    alpn = tls.selected_alpn_protocol()
                    der = tls.getpeercert(binary_form=True)
            except (OSError, ssl.SSLError) as exc:
                last = AcmeProblem(ProblemType.TLS if isinstance(exc, ssl.SSLError)
                                   else ProblemType.CONNECTION,
                                   f"tls-alpn-01: {addr}:{self.settings.tls_port}: {exc}")
                continue
            if alpn != ALPN or not der:
                raise AcmeProblem(ProblemType.TLS, f"tls-alpn-01: {ident.value} did not "
                                  f"negotiate ALPN {ALPN!r}", identifier=ident.as_dict())
            _check_alpn_cert(der, ident, digest)
            return
        assert last is not None
        raise last


def _check_alpn_cert(der: bytes, ident: Identifier, digest: bytes) -> None:
    def bad(why: str) -> AcmeProblem:
        return AcmeProblem(ProblemType.INCORRECT_RESPONSE, f"tls-alpn-01: {why}",
                           identifier=ident.as_dict())

    try:
        cert = x509.load_der_x509_certificate(der)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    except x509.ExtensionNotFound as exc:
        raise bad(f"certificate lacks extension {exc.oid.dotted_string}") from None
    except ValueError as exc:
        raise bad(f"certificate cannot be read: {exc}") from None
    names = [n.lower() for n in sans.get_values_for_type(x509.DNSName)]
    if names != [ident.value.lower()] or sans.get_values_for_type(x509.IPAddress):
        raise bad(f"certificate must name exactly {ident.value}, names {names}")
    if not ext.critical:
        raise bad("acmeIdentifier extension is not critical")
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    if raw != b"\x04\x20" + digest:  # DER OCTET STRING of the 32-byte SHA-256
        raise bad("acmeIdentifier does not match the key authorization")


def _ident_type(host: str) -> IdentifierType:
    try:
        ipaddress.ip_address(host)
        return IdentifierType.IP
    except ValueError:
        return IdentifierType.DNS


def offered_challenges(ident: Identifier, wildcard: bool) -> Sequence[ChallengeType]:
    if wildcard:
        return (ChallengeType.DNS_01,)
    if ident.type == IdentifierType.IP:
        return (ChallengeType.HTTP_01,)  # RFC 8738 tls-alpn for IPs needs reverse names
    return (ChallengeType.HTTP_01, ChallengeType.DNS_01, ChallengeType.TLS_ALPN_01)
