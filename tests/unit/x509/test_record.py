"""The Certificate record: fields, fingerprints and `kind` decided by signature."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from certwarden.errors import ParseError
from certwarden.x509 import Certificate, KeyType, Kind
from certwarden.x509 import create as mk


def _build(subject: str, issuer: str, key: object, signer: object, *,
           algo: hashes.HashAlgorithm | None = None,
           not_before: dt.datetime | None = None,
           not_after: dt.datetime | None = None, serial: int = 12345) -> Certificate:
    pub = key.public_key()  # type: ignore[attr-defined]
    builder = (cx509.CertificateBuilder()
               .subject_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(pub).serial_number(serial)
               .not_valid_before(not_before or dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
               .not_valid_after(not_after or dt.datetime(2025, 2, 1, tzinfo=dt.UTC)))
    cert = builder.sign(signer, algo)  # type: ignore[arg-type]
    return Certificate.from_der(cert.public_bytes(serialization.Encoding.DER))


def test_kind_self_signed_by_signature_not_by_name() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    # Given the same name as subject and issuer
    signed_by_self = _build("same", "same", key, key, algo=hashes.SHA256())
    signed_by_other = _build("same", "same", key, other, algo=hashes.SHA256())
    issued = _build("leaf", "ca", key, other, algo=hashes.SHA256())
    # Then only the one its own key verifies is self-signed
    assert signed_by_self.kind is Kind.SELF_SIGNED
    assert signed_by_other.kind is Kind.SELF_ISSUED
    assert signed_by_other.self_issued
    assert issued.kind is Kind.ISSUED
    assert not issued.self_issued


@pytest.mark.parametrize("algo", [hashes.SHA256(), hashes.SHA512()])
def test_rsa_self_signed(algo: hashes.HashAlgorithm) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _build("old root", "old root", key, key, algo=algo)
    assert cert.kind is Kind.SELF_SIGNED
    assert cert.signature_hash == algo.name
    assert cert.key.type is KeyType.RSA
    assert cert.key.bits == 2048


def test_ed25519_self_signed() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cert = _build("ed", "ed", key, key, algo=None)
    assert cert.kind is Kind.SELF_SIGNED
    assert cert.signature_hash is None
    assert cert.key.type is KeyType.ED25519


def test_fingerprints_are_over_the_der() -> None:
    issued = mk.self_signed(["fp.test"])
    c = issued.certificate
    assert c.sha256 == hashlib.sha256(c.der).hexdigest()
    assert c.sha1 == hashlib.sha1(c.der).hexdigest()  # noqa: S324 - a fingerprint, not security
    spki = issued.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert c.spki_sha256 == base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.mark.parametrize(("nb", "na"), [
    (dt.datetime(1950, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),
    (dt.datetime(1969, 7, 20, 20, 17, tzinfo=dt.UTC), dt.datetime(2049, 12, 31, tzinfo=dt.UTC)),
    (dt.datetime(2050, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)),
])
def test_extreme_validity_dates(nb: dt.datetime, na: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build("t", "t", key, key, algo=hashes.SHA256(), not_before=nb, not_after=na)
    assert cert.not_before == nb
    assert cert.not_after == na
    assert cert.not_after.tzinfo is dt.UTC
    assert cert.as_dict()["not_after"] == na.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_leaf_fields_from_create() -> None:
    ca = mk.dev_ca("Unit CA")
    leaf = mk.leaf(ca, ["app.test", "10.0.0.1", "*.app.test"]).certificate
    assert leaf.sans.dns == ("app.test", "*.app.test")
    assert leaf.sans.ip == ("10.0.0.1",)
    assert leaf.subject == "CN=app.test"
    assert leaf.is_ca is False
    assert leaf.basic_constraints is not None
    assert leaf.basic_constraints.critical
    assert leaf.key_usage == ("digital_signature",)
    assert leaf.extended_key_usage == ("serverAuth",)
    assert leaf.authority_key_id == ca.certificate.subject_key_id
    assert leaf.subject_key_id
    assert leaf.subject_key_id != leaf.authority_key_id
    assert leaf.version == 3
    assert 0 < leaf.serial < 2**127
    assert leaf.kind is Kind.ISSUED
    assert ca.certificate.is_ca
    assert ca.certificate.kind is Kind.SELF_SIGNED
    assert round(leaf.validity_days) == mk.DEV_VALIDITY_DAYS


def test_equality_is_by_fingerprint() -> None:
    c = mk.self_signed(["eq.test"]).certificate
    again = Certificate.from_der(c.der)
    assert c == again
    assert hash(c) == hash(again)
    assert c != mk.self_signed(["eq.test"]).certificate


@pytest.mark.parametrize("junk", [b"", b"\x30", b"\x30\x82\x01\x00" + b"\x00" * 10, b"hello"])
def test_from_der_rejects_junk_with_source(junk: bytes) -> None:
    with pytest.raises(ParseError) as err:
        Certificate.from_der(junk, source="junk.der")
    assert err.value.source == "junk.der"
    assert "\n" not in str(err.value)


def test_malformed_name_attribute_and_bad_version_stay_one_clear_answer() -> None:
    # Found by the traffic fuzzer: a CN whose value is a BIT STRING (cryptography raises a
    # TypeError when the name is decoded), and a version of 15 (InvalidVersion).
    issued = mk.self_signed(["odd.test"])
    cn = b"\x0c\x08odd.test"
    assert cn in issued.certificate.der
    odd = Certificate.from_der(issued.certificate.der.replace(cn, b"\x03\x08odd.test", 1))
    as_json = odd.as_dict()  # every lazily decoded field, without an exception
    assert as_json["subject"] == ""
    assert any(p.startswith("unreadable name") for p in odd.problems)
    version = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2 (v3)
    assert version in issued.certificate.der
    with pytest.raises(ParseError):
        Certificate.from_der(issued.certificate.der.replace(version, b"\xa0\x03\x02\x01\x0f"))
