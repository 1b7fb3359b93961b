"""Every rule: at least one vector where it fires and one where it stays quiet.

Vectors are forged with ``certwarden.cli.demo_forge`` (real certificates, real signatures).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import ipaddress
from collections.abc import Callable

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certwarden.assess import RULES, RULES_BY_ID, Estate, Policy, Target, Thresholds, Waiver
from certwarden.assess.engine import Assessor, assess
from certwarden.assess.policy import Owner
from certwarden.cli.demo_forge import Forged, forge, make_key
from certwarden.records import KeyFile, Location, Sighting
from certwarden.x509 import Certificate
from certwarden.x509.revocation import Crl, RevocationIndex, RevocationSource, Revoked
from certwarden.x509.verify import TrustStore

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

_ROOT = forge(subject="CN=Trusted Root", sans=(), ca=True, key="ec256",
              not_before=NOW - 400 * DAY, days=3650)
_INTER = forge(subject="CN=Trusted Issuing CA", sans=(), ca=True, issuer=_ROOT,
               not_before=NOW - 300 * DAY, days=1800)
_PRIV_ROOT = forge(subject="CN=Private Root", sans=(), ca=True, not_before=NOW - 10 * DAY,
                   days=3650)
_PRIV_INTER = forge(subject="CN=Private Issuing", sans=(), ca=True, issuer=_PRIV_ROOT,
                    not_before=NOW - 10 * DAY, days=1000)
TRUST = TrustStore.of([_ROOT.certificate], name="test roots")


def good(**kw: object) -> Forged:
    """A certificate every rule is happy with, unless ``kw`` changes that."""
    base: dict[str, object] = {"subject": "CN=app.example.test", "sans": ("app.example.test",),
                               "issuer": _INTER, "not_before": NOW - 10 * DAY, "days": 90}
    base.update(kw)
    return forge(**base)  # type: ignore[arg-type]


def tls(f: Forged, chain: tuple[Forged, ...] = (_INTER,), *, host: str = "127.0.0.1",
        sni: str | None = "app.example.test", port: int = 443) -> Sighting:
    return Sighting(certificate=f.certificate, location=Location.tls(host, port, sni=sni),
                    seen_at=NOW, chain=tuple(c.certificate for c in chain))


def file(f: Forged, path: str = "/etc/app/app.pem", key: KeyFile | None = None,
         position: int = 0) -> Sighting:
    return Sighting(certificate=f.certificate, location=Location.file(path), seen_at=NOW,
                    key=key, position=position)


def run(rule: str, sighting: Sighting, *, policy: Policy | None = None,
        others: tuple[Sighting, ...] = ()) -> list[str]:
    """The messages ``rule`` gives for ``sighting`` (in an estate of it plus ``others``)."""
    policy = policy or Policy()
    estate = Estate.build((sighting, *others))
    a = Assessor(policy=policy, trust=TRUST, estate=estate, now=NOW)
    owner = policy.owner_of(sighting.location.uri)
    t = Target(certificate=sighting.certificate, sighting=sighting, estate=estate,
               policy=policy, now=NOW, owner=owner, chain=a._chain(sighting),
               revocations=_revocations())
    return [h.message for h in RULES_BY_ID[rule].check(t)]


_LEDGER_REVOKED, _CRL_REVOKED = 0xDEAD01, 0xC41
_REVOKED_SUB = forge(subject="CN=Revoked Sub CA", sans=(), ca=True, issuer=_INTER,
                     serial=_LEDGER_REVOKED, not_before=NOW - 10 * DAY, days=500)


@functools.cache
def _revocations() -> RevocationIndex:
    """What every vector's run knows is revoked: one serial in our CA's ledger, one in a CRL
    of the trusted issuing CA (checked against that issuer before it counts)."""
    inter = _INTER.certificate
    assert inter.subject_key_id is not None
    ledger = Revoked(serial=_LEDGER_REVOKED, revoked_at=NOW - DAY, reason="keyCompromise",
                     source=RevocationSource.LEDGER, origin="certwarden CA ledger")
    crl = (cx509.CertificateRevocationListBuilder()
           .issuer_name(cx509.load_der_x509_certificate(inter.der).subject)
           .last_update(NOW - DAY).next_update(NOW + 6 * DAY)
           .add_extension(cx509.CRLNumber(7), critical=False)
           .add_revoked_certificate(cx509.RevokedCertificateBuilder()
                                    .serial_number(_CRL_REVOKED)
                                    .revocation_date(NOW - 3 * DAY).build())
           .sign(_INTER.key, hashes.SHA256()))
    return RevocationIndex(
        listed={(inter.subject_key_id, _LEDGER_REVOKED): ledger},
        crls=(Crl.from_bytes(crl.public_bytes(serialization.Encoding.DER),
                             origin="http://127.0.0.1/inter.crl"),),
        issuers={inter.subject: (inter,)})


# rule id -> (vectors that must fire, vectors that must not). Each vector builds a Sighting.
Vec = Callable[[], Sighting]
_SELF = forge(subject="CN=self.example.test", sans=("self.example.test",),
              not_before=NOW - DAY)
_CASES: dict[str, tuple[list[Vec], list[Vec]]] = {
    "self-signed": (
        [lambda: tls(_SELF, (), sni="self.example.test"), lambda: file(_SELF)],
        [lambda: tls(good()), lambda: file(_ROOT, "/etc/ssl/certs/root.pem")]),
    "self-issued-unverifiable": (
        [lambda: tls(forge(subject="CN=si.example.test", sans=("si.example.test",),
                           not_before=NOW - DAY, self_issued_bad_signature=True), (),
                     sni="si.example.test")],
        [lambda: tls(_SELF, (), sni="self.example.test"), lambda: tls(good())]),
    "untrusted-chain": (
        [lambda: tls(good(issuer=_PRIV_INTER), (_PRIV_INTER, _PRIV_ROOT)),
         # issue 11 item 4: leaf + intermediate, root left out as it should be
         lambda: tls(good(issuer=_PRIV_INTER), (_PRIV_INTER,))],
        [lambda: tls(good()), lambda: tls(good(), (_INTER, _ROOT)),
         lambda: tls(_SELF, (), sni="self.example.test"),
         lambda: _long_chain(200)]),  # path-too-long says it: one cause, one finding
    "incomplete-chain": (
        [lambda: tls(good(), ()), lambda: tls(good(issuer=_PRIV_INTER), ())],
        [lambda: tls(good()), lambda: tls(good(issuer=_PRIV_INTER), (_PRIV_INTER, _PRIV_ROOT)),
         lambda: tls(good(issuer=_PRIV_INTER), (_PRIV_INTER,)), lambda: _long_chain(10),
         lambda: _long_chain(200)]),  # issue 11 item 6: all presented, so nothing missing
    "path-too-long": (
        [lambda: _long_chain(200), lambda: _long_chain(11),
         lambda: tls(good(issuer=_LEN0_INNER), (_LEN0_INNER, _LEN0_OUTER))],
        [lambda: tls(good()), lambda: _long_chain(10),
         lambda: tls(good(issuer=_LEN0_OUTER), (_LEN0_OUTER,))]),
    "revoked": (
        [lambda: tls(good(serial=_LEDGER_REVOKED)), lambda: file(good(serial=_CRL_REVOKED)),
         lambda: tls(good(serial=_CRL_REVOKED)),
         # a revoked intermediate in the served chain revokes every leaf under it
         lambda: tls(good(issuer=_REVOKED_SUB), (_REVOKED_SUB, _INTER))],
        [lambda: tls(good()), lambda: file(good()),
         lambda: tls(_SELF, (), sni="self.example.test"), lambda: tls(good(), ()),
         # the same serial under another issuer is another certificate
         lambda: tls(good(issuer=_PRIV_INTER, serial=_CRL_REVOKED), (_PRIV_INTER,))]),
    "expired": (
        [lambda: tls(good(not_before=NOW - 100 * DAY, days=50))],
        [lambda: tls(good())]),
    "not-yet-valid": (
        [lambda: tls(good(not_before=NOW + 5 * DAY))],
        [lambda: tls(good())]),
    "expiring-soon": (
        [lambda: tls(good(not_before=NOW - 80 * DAY, days=90)),
         lambda: tls(good(not_before=NOW - 25 * DAY, days=30))],  # 5 of 30 days left
        [lambda: tls(good()), lambda: tls(good(not_before=NOW - 100 * DAY, days=50)),
         # issue 11: a 30-day leaf from our CA right after issue is not "expiring soon"
         lambda: tls(good(not_before=NOW - dt.timedelta(hours=1), days=30))]),
    "validity-too-long": (
        [lambda: tls(good(not_before=NOW - 10 * DAY, days=201)),
         lambda: tls(good(not_before=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), days=399)),
         # issue 11: `openssl req -x509` marks it CA:TRUE; served as the leaf it is one
         lambda: tls(_REQ_X509_LONG, (), sni="wild.example.test"),
         lambda: file(_REQ_X509_LONG, key=KeyFile(path="/etc/app/app.key", encrypted=False,
                                                   mode=0o600)),
         lambda: tls(good(days=365 * 20))],
        [lambda: tls(good(not_before=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), days=397)),
         lambda: file(_ROOT, "/etc/ssl/certs/root.pem")]),
    "never-expires": (
        [lambda: file(forge(not_before=NOW - DAY,
                            not_after=dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)))],
        [lambda: tls(good()), lambda: file(_ROOT, "/etc/ssl/certs/root.pem"),
         # issue 11 (RFC 5280 §4.1.2.5): only 99991231235959Z has no expiry; a 20-year
         # (or 12-year) certificate expires and is validity-too-long instead
         lambda: tls(good(days=365 * 20)), lambda: tls(good(days=365 * 12)),
         lambda: tls(good(not_after=dt.datetime(9999, 1, 1, tzinfo=dt.UTC)))]),
    "weak-key": (
        [lambda: tls(good(key="rsa1024")), lambda: tls(good(key="ec192")),
         lambda: tls(good(key="dsa2048")), lambda: tls(good(key="rsa2052")),
         lambda: tls(good(key=ec.generate_private_key(ec.SECP256K1())))],
        [lambda: tls(good()), lambda: tls(good(key="rsa2048")), lambda: tls(good(key="ed25519"))]),
    "weak-signature": (
        [lambda: file(forge(key="rsa2048", hash_name="sha1", not_before=NOW - DAY)),
         lambda: file(forge(key="rsa2048", hash_name="md5", not_before=NOW - DAY))],
        [lambda: tls(good()),
         lambda: file(forge(subject="CN=Old Root", sans=(), ca=True, key="rsa2048",
                            hash_name="sha1", not_before=NOW - DAY), "/etc/ssl/certs/o.pem")]),
    "missing-san": (
        [lambda: tls(good(sans=()))],
        [lambda: tls(good()), lambda: file(_ROOT, "/etc/ssl/certs/root.pem"),
         lambda: file(good(sans=(), eku=("clientAuth",)))]),
    "cn-not-in-san": (
        [lambda: tls(good(subject="CN=other.example.test")),
         lambda: tls(good(subject="CN=10.0.0.2", sans=("10.0.0.1",)), sni=None)],
        [lambda: tls(good()), lambda: tls(good(subject="O=No CN")),
         # the same address spelled otherwise: ip-name-form's finding, not this one
         lambda: tls(good(subject="CN=127.000.000.001", sans=("127.0.0.1",)), sni=None)]),
    "leaf-eku": (
        [lambda: tls(good(eku=())), lambda: file(good(eku=("anyExtendedKeyUsage",))),
         lambda: tls(good(eku=("serverAuth", "anyExtendedKeyUsage"))),
         lambda: tls(good(eku=("clientAuth",)))],
        [lambda: tls(good()), lambda: file(good(eku=("clientAuth",))),
         lambda: file(_ROOT, "/etc/ssl/certs/root.pem"), lambda: tls(_INTER, (_ROOT,))]),
    "root-profile": (
        [lambda: file(forge(subject="CN=EKU Root", sans=(), ca=True, eku=("serverAuth",),
                            eku_on_ca=True, not_before=NOW - DAY), "/etc/ssl/certs/e.pem"),
         lambda: file(_aki_issuer_serial_root(), "/etc/ssl/certs/a.pem")],
        [lambda: file(_ROOT, "/etc/ssl/certs/root.pem"), lambda: tls(good())]),
    "wildcard-public-suffix": (
        [lambda: tls(good(sans=("*.co.uk",), subject="CN=*.co.uk"), sni="x.co.uk"),
         lambda: tls(good(sans=("*.github.io",), subject="CN=*.github.io"), sni="a.github.io"),
         lambda: file(good(sans=(), subject="CN=*.com"))],
        [lambda: tls(good()),
         lambda: tls(good(sans=("*.example.co.uk",), subject="CN=*.example.co.uk"),
                     sni="a.example.co.uk")]),
    "ip-name-form": (
        [lambda: tls(good(subject="CN=127.000.000.001", sans=("127.0.0.1",)), sni=None),
         lambda: tls(good(subject="CN=10.1", sans=("10.1",))),
         lambda: tls(good(subject="CN=app.example.test",
                          sans=("app.example.test", "::ffff:10.0.0.1"))),
         lambda: tls(_netmask_san_leaf()),
         lambda: tls(good(subject="CN=2001:DB8::1", sans=("2001:db8::1",)), sni=None)],
        [lambda: tls(good()),
         lambda: tls(good(subject="CN=127.0.0.1", sans=("127.0.0.1",)), sni=None),
         lambda: tls(good(subject="CN=2001:db8::1", sans=("2001:db8::1",)), sni=None),
         lambda: tls(good(subject="CN=0xcafe.example.test", sans=("0xcafe.example.test",)),
                     sni="0xcafe.example.test")]),
    "wildcard": (
        [lambda: tls(good(sans=("*.example.test",), subject="CN=*.example.test")),
         lambda: tls(_REQ_X509_LONG, (), sni="wild.example.test")],
        [lambda: tls(good()), lambda: tls(_INTER, (_ROOT,))]),
    "hostname-mismatch": (
        [lambda: tls(good(), sni="db.example.test"),
         lambda: tls(good(), host="db.example.test", sni=None)],
        [lambda: tls(good()), lambda: tls(good(sans=("127.0.0.1",), subject="CN=127.0.0.1"),
                                          sni=None),
         # issue 11: reached by IP without SNI there is no name to check, so no mismatch
         lambda: tls(good(), sni=None),
         lambda: tls(good(sans=("*.example.test",)), sni="app.example.test"),
         lambda: file(good(), "/srv/db.pem")]),
    "ca-cert-served-as-leaf": (
        [lambda: tls(_INTER, (_ROOT,))],
        [lambda: tls(good()), lambda: file(_INTER, "/etc/ssl/inter.pem")]),
    "key-reuse": (
        [lambda: _key_reuse()[0]],
        [lambda: tls(good())]),
    "cert-sprawl": (
        [lambda: _sprawl(5)],
        [lambda: _sprawl(4), lambda: _sprawl(5, _INTER)]),
    "private-key-exposed": (
        [lambda: file(good(), key=KeyFile(path="/etc/app/app.key", encrypted=True, mode=0o644)),
         lambda: file(good(), key=KeyFile(path="/etc/app/app.key", encrypted=False,
                                          mode=0o640))],
        [lambda: file(good(), key=KeyFile(path="/etc/app/app.key", encrypted=True, mode=0o600)),
         # issue 11: owner-only and unencrypted is private-key-unencrypted, not exposed
         lambda: file(good(), key=KeyFile(path="/etc/app/app.key", encrypted=False,
                                          mode=0o600)),
         lambda: file(good())]),
    "private-key-unencrypted": (
        [lambda: file(good(), key=KeyFile(path="/etc/app/app.key", encrypted=False,
                                          mode=0o600, owner="www-data"))],
        [lambda: file(good(), key=KeyFile(path="/etc/app/app.key", encrypted=True, mode=0o600)),
         lambda: file(good(), key=KeyFile(path="/etc/app/app.key", encrypted=False,
                                          mode=0o644)),
         lambda: file(good())]),
    "placeholder-subject": (
        [lambda: tls(good(subject="CN=app.example.test,O=Internet Widgits Pty Ltd")),
         lambda: tls(good(subject="CN=localhost"), sni="app.example.test")],
        [lambda: tls(good()),
         lambda: tls(good(subject="CN=localhost", sans=("localhost",)), sni="localhost")]),
    "v1-certificate": (
        [lambda: file(forge(version=1, not_before=NOW - DAY))],
        [lambda: tls(good())]),
    "bad-serial": (
        [lambda: tls(good(serial=0)), lambda: tls(good(serial=-7)),
         lambda: tls(good(serial=1 << 160))],
        [lambda: tls(good()), lambda: tls(good(serial=(1 << 159) - 1))]),
    "shadow-certificate": (
        [lambda: tls(_SELF, (), sni="self.example.test")],
        [lambda: tls(good())]),
}
_REUSE_KEY = make_key("ec256")
# What `openssl req -x509 -days 7300 -subj /CN=*.example.test` makes: self-signed, CA:TRUE.
_REQ_X509_LONG = forge(subject="CN=*.example.test", sans=("*.example.test",), ca=True,
                       not_before=NOW - DAY, days=7300)


def _built(subject: str, issuer: Forged | None, *, ca: bool,
           extensions: tuple[tuple[cx509.ExtensionType, bool], ...]) -> Forged:
    """A certificate built with cryptography directly, for shapes ``forge`` does not make."""
    key = make_key("ec256")
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name = (cx509.load_der_x509_certificate(issuer.der).subject if issuer else name)
    b = (cx509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(77)
         .not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
         .add_extension(cx509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(cx509.SubjectKeyIdentifier.from_public_key(key.public_key()), False))
    for ext, critical in extensions:
        b = b.add_extension(ext, critical)
    signer = issuer.key if issuer else key
    der = b.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return Forged(certificate=Certificate.from_der(der), key=key)


def _aki_issuer_serial_root() -> Forged:
    aki = cx509.AuthorityKeyIdentifier(
        key_identifier=b"\x01" * 20,
        authority_cert_issuer=[cx509.DirectoryName(cx509.Name([
            cx509.NameAttribute(NameOID.COMMON_NAME, "AKI Root")]))],
        authority_cert_serial_number=77)
    return _built("AKI Root", None, ca=True, extensions=((aki, False),))


def _netmask_san_leaf() -> Forged:
    san = cx509.SubjectAlternativeName([
        cx509.DNSName("app.example.test"),
        cx509.IPAddress(ipaddress.ip_network("10.0.0.0/24"))])
    eku = cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    aki = cx509.AuthorityKeyIdentifier.from_issuer_public_key(_INTER.key.public_key())
    return _built("app.example.test", _INTER, ca=False,
                  extensions=((san, False), (eku, False), (aki, False)))
# pathLenConstraint 0 on the upper CA, yet a CA below it: one intermediate too many.
_LEN0_OUTER = forge(subject="CN=Len0 Issuing", sans=(), ca=True, issuer=_ROOT, path_length=0,
                    not_before=NOW - 10 * DAY, days=1000)
_LEN0_INNER = forge(subject="CN=Len0 Sub", sans=(), ca=True, issuer=_LEN0_OUTER,
                    not_before=NOW - 10 * DAY, days=900)
_CHAINS: dict[int, tuple[Forged, ...]] = {}


def _long_chain(n: int) -> Sighting:
    """n certificates chain-0 (the trusted root) .. chain-(n-1) (the leaf), all presented."""
    if n not in _CHAINS:
        certs = [_ROOT]
        for i in range(1, n - 1):
            certs.append(forge(subject=f"CN=chain-{i}", sans=(), ca=True, issuer=certs[-1],
                               not_before=NOW - 10 * DAY, days=1000))
        _CHAINS[n] = tuple(certs)
    certs_ = _CHAINS[n]
    leaf = good(issuer=certs_[-1])
    return tls(leaf, tuple(reversed(certs_)))


def _key_reuse() -> tuple[Sighting, Sighting]:
    a = good(key=_REUSE_KEY, subject="CN=a.example.test", sans=("a.example.test",))
    b = good(key=_REUSE_KEY, subject="CN=b.example.test", sans=("b.example.test",))
    return file(a, "/srv/a.pem"), file(b, "/srv/b.pem")


_SPRAWLED = good()


def _sprawl(n: int, cert: Forged = _SPRAWLED) -> Sighting:
    return file(cert, f"/bundles/{8000 + n}.pem")


def _others(rule: str, s: Sighting) -> tuple[Sighting, ...]:
    if rule == "key-reuse":
        return _key_reuse()[1:] if s.location.uri.endswith("a.pem") else ()
    if rule == "cert-sprawl":
        assert s.location.path is not None
        count = int(s.location.path.split("/")[-1].split(".")[0]) - 8000
        mine = Forged(certificate=s.certificate, key=None)
        return tuple(tls(mine, port=9000 + i) for i in range(count - 1))
    return ()


def test_rule_ids_unique_and_every_rule_has_vectors() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    per_cert = {r.id for r in RULES if r.scope.value != "policy"}
    assert per_cert == set(_CASES), per_cert ^ set(_CASES)
    for r in RULES:
        assert r.rationale, r.id
        assert r.citation, r.id
        assert r.remediation, r.id


@pytest.mark.parametrize("rule", sorted(_CASES))
def test_rule_fires_on_failing_vectors(rule: str) -> None:
    for make in _CASES[rule][0]:
        s = make()
        assert run(rule, s, others=_others(rule, s)), f"{rule} stayed quiet on {s.location.uri}"


@pytest.mark.parametrize("rule", sorted(_CASES))
def test_rule_quiet_on_passing_vectors(rule: str) -> None:
    for make in _CASES[rule][1]:
        s = make()
        msgs = run(rule, s, others=_others(rule, s))
        assert msgs == [], f"{rule} fired on {s.location.uri}: {msgs}"


def test_shadow_quiet_when_an_owner_is_known() -> None:
    policy = Policy(owners=(Owner(match="tls://127.0.0.1:*", team="web"),))
    assert run("shadow-certificate", tls(_SELF, (), sni="self.example.test"), policy=policy) == []
    assert run("self-signed", tls(_SELF, (), sni="self.example.test"), policy=policy)


def test_private_ceiling_is_stricter_for_private_certificates_only() -> None:
    policy = Policy(thresholds=Thresholds(private_max_validity_days=30))
    private = tls(good(issuer=_PRIV_INTER), (_PRIV_INTER, _PRIV_ROOT))
    assert "policy ceiling" in run("validity-too-long", private, policy=policy)[0]
    assert run("validity-too-long", tls(good()), policy=policy) == []


def test_expired_exception_is_a_finding_and_silences_nothing() -> None:
    cert = good(not_before=NOW - 100 * DAY, days=50)
    s = tls(cert)
    live = Waiver(reason="migration", owner="web", expires=NOW.date() + 10 * DAY,
                  sha256=cert.certificate.sha256, rules=("expired",))
    gone = dataclasses.replace(live, expires=NOW.date() - DAY, line=7)
    quiet = assess([s], policy=Policy(exceptions=(live,)), trust=TRUST, now=NOW)
    assert "expired" not in {f.rule for f in quiet.findings}
    assert quiet.suppressed == 1
    loud = assess([s], policy=Policy(exceptions=(gone,), source="p.yaml"), trust=TRUST, now=NOW)
    rules = [f.rule for f in loud.findings]
    assert "expired" in rules
    assert "exception-expired" in rules
    ex = next(f for f in loud.findings if f.rule == "exception-expired")
    assert ex.evidence["policy"] == "p.yaml:7"
    assert ex.location == "file://p.yaml"  # named by sha256: the place is the policy file
    assert ex.owner == "web"


def test_severity_override_and_rule_off() -> None:
    from certwarden.assess import Severity

    s = tls(good(sans=("*.example.test",), subject="CN=*.example.test"))
    on = assess([s], policy=Policy(severity={"wildcard": Severity.HIGH}), trust=TRUST, now=NOW)
    assert [f.severity for f in on.findings if f.rule == "wildcard"] == [Severity.HIGH]
    off = assess([s], policy=Policy(disabled=frozenset({"wildcard"})), trust=TRUST, now=NOW)
    assert "wildcard" not in {f.rule for f in off.findings}


def test_clean_estate_has_no_findings() -> None:
    result = assess([tls(good())], trust=TRUST, now=NOW,
                    policy=Policy(owners=(Owner(match="*", team="web"),)))
    assert result.findings == ()


def test_chain_verdict_shared_per_chain_but_each_leaf_signature_checked() -> None:
    honest = good(subject="CN=h.example.test", sans=("h.example.test",))
    forged = good(subject="CN=f.example.test", sans=("f.example.test",),
                  signer_key=make_key("ec256"))
    assert honest.certificate.authority_key_id == forged.certificate.authority_key_id
    honest2 = good(subject="CN=h2.example.test", sans=("h2.example.test",))
    policy = Policy(owners=(Owner(match="*", team="t"),))
    # The forged leaf first (it represents the chain shape), then honest ones, then again.
    for order in ([forged, honest, honest2], [honest, forged, honest2]):
        sightings = [tls(f, sni=f.certificate.sans.dns[0]) for f in order]
        result = assess(sightings, trust=TRUST, now=NOW, policy=policy)
        by_subject = {(f.subject, f.rule) for f in result.findings}
        assert by_subject == {(forged.certificate.subject, "untrusted-chain")}, order
        msg = next(f.message for f in result.findings)
        assert "does not verify" in msg


def test_every_rule_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "assessment.md").read_text()
    missing = [r.id for r in RULES if f'<a id="{r.id}"></a>`{r.id}`' not in doc]
    assert not missing


def test_findings_by_location_for_inspect_and_scan() -> None:
    from certwarden.assess import findings_by_location

    clean, selfs = tls(good()), tls(_SELF, (), sni="self.example.test", port=9443)
    out = findings_by_location([clean, selfs], trust=TRUST, now=NOW)
    assert out[clean.location.uri] == []
    assert {f.rule for f in out[selfs.location.uri]} == {"self-signed", "shadow-certificate"}


def test_validity_message_rounds_as_the_ceiling_is_tested() -> None:
    # 200 days and one second: over the 200-day ceiling, and the message must say so.
    nb = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    s = tls(good(not_before=nb, not_after=nb + 200 * DAY + dt.timedelta(seconds=1)))
    [msg] = run("validity-too-long", s)
    assert msg.startswith("valid for 201 days"), msg
    assert msg.endswith("is 200 days")
    assert run("validity-too-long", tls(good(not_before=nb,
                                             not_after=nb + 200 * DAY - dt.timedelta(seconds=1)))
               ) == []


def test_a_ca_true_self_signed_leaf_is_judged_as_the_leaf_it_is_used_as() -> None:
    served = tls(_REQ_X509_LONG, (), sni="wild.example.test")
    result = assess([served], trust=TRUST, now=NOW)
    rules = {f.rule for f in result.findings}
    assert {"self-signed", "validity-too-long", "wildcard", "ca-cert-served-as-leaf"} <= rules
    assert "never-expires" not in rules  # 20 years is long, not "no expiry"
    # The same certificate in a trust bundle (no key, not served) is trust, not a finding.
    bundle = file(_REQ_X509_LONG, "/etc/ssl/certs/bundle.pem")
    assert assess([bundle], trust=TRUST, now=NOW).findings == ()
    # With its key beside it, but it signed a leaf we have seen: a CA in use, not a leaf.
    signer = forge(subject="CN=Dev CA", sans=(), ca=True, not_before=NOW - DAY, days=3650)
    leaf = good(issuer=signer)
    ca_file = file(signer, "/srv/ca/ca.pem", key=KeyFile(path="/srv/ca/ca.key",
                                                          encrypted=True, mode=0o600))
    ca_rules = {f.rule for f in assess([ca_file, file(leaf, "/srv/app.pem")], trust=TRUST,
                                       now=NOW).findings if f.location == ca_file.location.uri}
    assert "self-signed" not in ca_rules
    assert "validity-too-long" not in ca_rules


def test_managed_certificates_are_not_expiring_soon() -> None:
    s = tls(good(not_before=NOW - 80 * DAY, days=90))
    assert "expiring-soon" in {f.rule for f in assess([s], trust=TRUST, now=NOW).findings}
    quiet = assess([s], trust=TRUST, now=NOW, managed=lambda cert, sighting: True)
    assert "expiring-soon" not in {f.rule for f in quiet.findings}


def test_a_ca_true_file_is_a_leaf_only_with_the_services_key_beside_it() -> None:
    from certwarden.assess.target import used_as_leaf

    cert = _REQ_X509_LONG.certificate
    key = KeyFile(path="/etc/ssl/private/web.key", encrypted=False, mode=0o600)
    # Debian's layout: /etc/ssl/certs + /etc/ssl/private are siblings.
    assert used_as_leaf(cert, file(_REQ_X509_LONG, "/etc/ssl/certs/web.pem", key=key), set())
    assert used_as_leaf(cert, file(_REQ_X509_LONG, "/etc/ssl/private/web.pem", key=key), set())
    # The same certificate copied into the trust store pairs with the key by public key too,
    # but a service does not read its own certificate from there.
    trusted = file(_REQ_X509_LONG, "/usr/local/share/ca-certificates/web.crt", key=key)
    assert not used_as_leaf(cert, trusted, set())
    # Second in a bundle, without a key, or a name that signed something: not a leaf.
    assert not used_as_leaf(cert, file(_REQ_X509_LONG, "/etc/ssl/certs/web.pem", key=key,
                                       position=1), set())
    assert not used_as_leaf(cert, file(_REQ_X509_LONG, "/etc/ssl/certs/web.pem"), set())
    assert not used_as_leaf(cert, file(_REQ_X509_LONG, "/etc/ssl/certs/web.pem", key=key),
                            {cert.subject})
    # Served: a leaf whatever it signed; an issuer in a presented chain: never.
    assert used_as_leaf(cert, tls(_REQ_X509_LONG, ()), {cert.subject})
    inter = tls(good())
    assert not used_as_leaf(_INTER.certificate, dataclasses.replace(
        inter, certificate=_INTER.certificate, position=1), set())
