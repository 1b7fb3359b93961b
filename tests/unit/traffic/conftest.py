"""Certificates made here with cryptography (real DER, real signatures) for the traffic tests."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_cert(cn: str | None = "svc.example.org", *, org: str | None = None,
              days: float = 90, not_before: dt.datetime | None = None,
              sans: tuple[str, ...] = ("svc.example.org",),
              issuer_key: ec.EllipticCurvePrivateKey | None = None,
              issuer_name: x509.Name | None = None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = []
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    if org is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    name = x509.Name(attrs)
    nb = not_before or dt.datetime(2023, 11, 1, tzinfo=dt.UTC)
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer_name or name).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(nb).not_valid_after(nb + dt.timedelta(days=days)))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]),
                            critical=False)
    cert = b.sign(issuer_key or key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="session")
def self_signed_der() -> bytes:
    return make_cert()
