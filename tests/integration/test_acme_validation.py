"""The challenge validator against real responders on loopback (sockets, DNS, TLS)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from acme_support import DnsZone, Http01Responder, alpn_certificate, alpn_responder, free_port
from certwarden.acme.model import ChallengeType, Identifier, IdentifierType
from certwarden.acme.problems import AcmeProblem, ProblemType
from certwarden.acme.validation import Validator, ValidatorSettings, dns01_digest

KA = "tok.thumb"
NAME = Identifier(type=IdentifierType.DNS, value="va.internal")


@pytest.fixture
def dns_zone() -> Iterator[tuple[DnsZone, str]]:
    zone = DnsZone()
    with zone.serving() as (host, port):
        yield zone, f"{host}:{port}"


def validator(resolver: str, **kw: object) -> Validator:
    options: dict[str, object] = {"timeout": 2.0, **kw}
    return Validator(ValidatorSettings(resolver=resolver, **options))  # type: ignore[arg-type]


def refusal(v: Validator, kind: ChallengeType, ident: Identifier = NAME, token: str = "tok",  # noqa: S107 - an ACME token
            ka: str = KA) -> AcmeProblem:
    with pytest.raises(AcmeProblem) as err:
        v.validate(kind, ident, token, ka)
    return err.value


def test_http01(dns_zone: tuple[DnsZone, str]) -> None:
    _, resolver = dns_zone
    responder = Http01Responder()
    with responder.serving() as port:
        v = validator(resolver, http_port=port)
        responder.tokens["tok"] = KA + "\n"  # trailing whitespace is allowed
        v.validate(ChallengeType.HTTP_01, NAME, "tok", KA)
        assert responder.hits == ["va.internal/.well-known/acme-challenge/tok"]
        responder.tokens["tok"] = "something else"
        assert refusal(v, ChallengeType.HTTP_01).type == ProblemType.INCORRECT_RESPONSE
        del responder.tokens["tok"]
        p = refusal(v, ChallengeType.HTTP_01)
        assert p.type == ProblemType.UNAUTHORIZED
        assert "404" in p.detail
        # an IP identifier is validated at that address, without DNS
        responder.tokens["tok"] = KA
        v.validate(ChallengeType.HTTP_01, Identifier(type=IdentifierType.IP, value="127.0.0.1"),
                   "tok", KA)
    closed = validator(resolver, http_port=free_port())
    assert refusal(closed, ChallengeType.HTTP_01).type == ProblemType.CONNECTION


def test_http01_follows_a_redirect(dns_zone: tuple[DnsZone, str]) -> None:
    _, resolver = dns_zone
    redirect_port = free_port()

    class Hop(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers["Host"] == "va.internal" and not self.path.startswith("/final"):
                self.send_response(301)
                self.send_header("Location", f"/final{self.path}")
                self.end_headers()
                return
            self.send_response(404)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", redirect_port), Hop)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        v = validator(resolver, http_port=redirect_port)
        p = refusal(v, ChallengeType.HTTP_01)
        assert p.type == ProblemType.UNAUTHORIZED
        assert "/final/.well-known" in p.detail
        assert "404" in p.detail
    finally:
        srv.shutdown()
        srv.server_close()


def test_dns01(dns_zone: tuple[DnsZone, str]) -> None:
    zone, resolver = dns_zone
    v = validator(resolver)
    assert refusal(v, ChallengeType.DNS_01).type == ProblemType.INCORRECT_RESPONSE
    zone.set_txt("_acme-challenge.va.internal", "decoy")
    zone.set_txt("_acme-challenge.va.internal", dns01_digest(KA))
    v.validate(ChallengeType.DNS_01, NAME, "tok", KA)
    dead = validator(f"127.0.0.1:{free_port()}", timeout=0.3)
    assert refusal(dead, ChallengeType.DNS_01).type == ProblemType.DNS


def test_tls_alpn01(dns_zone: tuple[DnsZone, str], tmp_path: Path) -> None:
    _, resolver = dns_zone
    good = alpn_certificate("va.internal", KA, tmp=tmp_path)
    with alpn_responder(*good) as port:
        validator(resolver, tls_port=port).validate(ChallengeType.TLS_ALPN_01, NAME, "tok", KA)
        p = refusal(validator(resolver, tls_port=port), ChallengeType.TLS_ALPN_01, ka="x.y")
        assert p.type == ProblemType.INCORRECT_RESPONSE
    soft = alpn_certificate("va.internal", KA, critical=False, tmp=tmp_path)
    with alpn_responder(*soft) as port:
        p = refusal(validator(resolver, tls_port=port), ChallengeType.TLS_ALPN_01)
        assert "critical" in p.detail
    with alpn_responder(*good, alpn="h2") as port:
        p = refusal(validator(resolver, tls_port=port), ChallengeType.TLS_ALPN_01)
        assert p.type in (ProblemType.TLS, ProblemType.CONNECTION)


def test_allowlist(dns_zone: tuple[DnsZone, str]) -> None:
    zone, resolver = dns_zone
    zone.a["va.internal"] = ["203.0.113.5"]
    p = refusal(validator(resolver), ChallengeType.HTTP_01)
    assert p.type == ProblemType.REJECTED_IDENTIFIER
    zone.a["va.internal"] = ["127.0.0.1"]
    p = refusal(validator(resolver, allow=("10.0.0.0/8",)), ChallengeType.HTTP_01)
    assert p.type == ProblemType.REJECTED_IDENTIFIER
    assert "127.0.0.1" in p.detail
    ip = Identifier(type=IdentifierType.IP, value="198.51.100.7")
    assert refusal(validator(resolver), ChallengeType.HTTP_01, ip).type == \
        ProblemType.REJECTED_IDENTIFIER


def test_bad_resolver_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="resolver"):
        ValidatorSettings(resolver="dns.example:53")
