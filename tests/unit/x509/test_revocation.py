"""CRLs honoured by ``verify_chain`` and read by ``Crl``: revoked, and each reason a relying
party must refuse a CRL (RFC 5280 §5.2, §6.3.3). CRLs are built with cryptography here; the
openssl-made ones are in tests/peer/test_x509_revocation_openssl.py."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from certwarden.cli.demo_forge import Forged, forge
from certwarden.errors import ParseError
from certwarden.x509 import Certificate
from certwarden.x509.revocation import Crl, RevocationIndex, RevocationSource, Revoked
from certwarden.x509.verify import Problem, TrustStore, verify_chain

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
ROOT = forge(subject="CN=Rev Root", sans=(), ca=True, not_before=NOW - 30 * DAY, days=3650)
INTER = forge(subject="CN=Rev Issuing", sans=(), ca=True, issuer=ROOT,
              not_before=NOW - 30 * DAY, days=1000)
TRUST = TrustStore.of([ROOT.certificate], name="rev root")


def _leaf(serial: int) -> Forged:
    return forge(subject="CN=r.example.test", sans=("r.example.test",), issuer=INTER,
                 not_before=NOW - DAY, days=30, serial=serial)


def _crl(issuer: Forged, *serials: int, number: int | None = 1, next_update: dt.datetime |
         None = None, critical_unknown: bool = False, signer: object = None) -> Crl:
    name = cx509.load_der_x509_certificate(issuer.der).subject
    b = (cx509.CertificateRevocationListBuilder().issuer_name(name)
         .last_update(NOW - DAY).next_update(next_update or NOW + 6 * DAY))
    if number is not None:
        b = b.add_extension(cx509.CRLNumber(number), critical=False)
    if critical_unknown:
        b = b.add_extension(cx509.UnrecognizedExtension(
            cx509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"), critical=True)
    for s in serials:
        b = b.add_revoked_certificate(cx509.RevokedCertificateBuilder().serial_number(s)
                                      .revocation_date(NOW - 2 * DAY).build())
    crl = b.sign(signer or issuer.key, hashes.SHA256())
    from cryptography.hazmat.primitives.serialization import Encoding

    return Crl.from_bytes(crl.public_bytes(Encoding.DER), origin="test.crl")


def _verify(leaf: Forged, *crls: Crl, chain: tuple[Forged, ...] = (INTER,)) -> tuple[
        set[Problem], str | None]:
    r = verify_chain(leaf.certificate, [c.certificate for c in chain], TRUST, at=NOW,
                     crls=crls)
    return set(r.problems), r.detail


def test_a_listed_serial_is_revoked_and_the_others_are_not() -> None:
    crl = _crl(INTER, 0xBAD)
    problems, detail = _verify(_leaf(0xBAD), crl)
    assert problems == {Problem.REVOKED}
    assert detail is not None
    assert "serial bad revoked 2026-11-25" in detail
    assert _verify(_leaf(0x600D), crl) == (set(), None)
    assert verify_chain(_leaf(0x600D).certificate, [INTER.certificate], TRUST, at=NOW,
                        crls=[crl]).valid


def test_a_revoked_intermediate_sinks_the_chain() -> None:
    root_crl = _crl(ROOT, INTER.certificate.serial)
    problems, _ = _verify(_leaf(0x600D), root_crl)
    assert problems == {Problem.REVOKED}


def _no_crl_sign_ca() -> Forged:
    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(cx509.NameOID.COMMON_NAME, "No CRLSign CA")])
    b = (cx509.CertificateBuilder().subject_name(name)
         .issuer_name(cx509.load_der_x509_certificate(ROOT.der).subject)
         .public_key(key.public_key()).serial_number(31337)
         .not_valid_before(NOW - 30 * DAY).not_valid_after(NOW + 900 * DAY)
         .add_extension(cx509.BasicConstraints(ca=True, path_length=None), True)
         .add_extension(cx509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True,
                                       crl_sign=False, encipher_only=False,
                                       decipher_only=False), True)
         .add_extension(cx509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
         .add_extension(cx509.AuthorityKeyIdentifier.from_issuer_public_key(
             ROOT.key.public_key()), False))
    from cryptography.hazmat.primitives.serialization import Encoding

    der = b.sign(ROOT.key, hashes.SHA256()).public_bytes(Encoding.DER)
    return Forged(certificate=Certificate.from_der(der), key=key)


@pytest.mark.parametrize(("case", "expect"), [
    ("no-crl-sign", "lacks cRLSign"),
    ("critical-unknown", "critical extension(s) not understood: 1.3.6.1.4.1.55555.1"),
    ("no-number", "carries no CRL number"),
    ("bad-signature", "signature does not verify"),
    ("stale", "stale"),
])
def test_an_unusable_crl_is_bad_crl_not_evidence(case: str, expect: str) -> None:
    issuer = INTER
    if case == "no-crl-sign":
        issuer = _no_crl_sign_ca()
        crl = _crl(issuer, 0xBAD)
    elif case == "critical-unknown":
        crl = _crl(INTER, 0xBAD, critical_unknown=True)
    elif case == "no-number":
        crl = _crl(INTER, 0xBAD, number=None)
    elif case == "bad-signature":
        crl = _crl(INTER, 0xBAD, signer=ec.generate_private_key(ec.SECP256R1()))
    else:
        crl = _crl(INTER, 0xBAD, next_update=NOW - DAY / 2)
    leaf = forge(subject="CN=r.example.test", sans=("r.example.test",), issuer=issuer,
                 not_before=NOW - DAY, days=30, serial=0xBAD)
    problems, detail = _verify(leaf, crl, chain=(issuer,))
    assert Problem.BAD_CRL in problems
    assert Problem.REVOKED not in problems  # an unusable CRL proves nothing either way
    assert detail is not None
    assert expect in detail
    # and the assessment's index refuses it the same way
    index = RevocationIndex(crls=(crl,))
    assert index.lookup(leaf.certificate, issuer.certificate, NOW) is None


def test_index_finds_ledger_entries_and_checks_crls_against_the_issuer() -> None:
    leaf = _leaf(0xBAD)
    entry = Revoked(serial=0xBAD, revoked_at=NOW - DAY, reason="keyCompromise",
                    source=RevocationSource.LEDGER, origin="certwarden CA ledger")
    aki = leaf.certificate.authority_key_id
    assert aki is not None
    listed = RevocationIndex(listed={(aki, 0xBAD): entry})
    assert listed.lookup(leaf.certificate, None, NOW) == entry
    assert listed.lookup(_leaf(0x600D).certificate, None, NOW) is None
    crl = _crl(INTER, 0xBAD)
    # without the issuer, a CRL is evidence only if the index knows the issuer to check it
    assert RevocationIndex(crls=(crl,)).lookup(leaf.certificate, None, NOW) is None
    known = RevocationIndex(crls=(crl,), issuers={INTER.certificate.subject:
                                                  (INTER.certificate,)})
    hit = known.lookup(leaf.certificate, None, NOW)
    assert hit is not None
    assert hit.source is RevocationSource.CRL


def test_not_a_crl_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not a CRL"):
        Crl.from_bytes(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
                       origin="junk.crl")
