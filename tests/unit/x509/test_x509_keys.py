"""x509.keys and x509.der: what every key and certificate maker shares."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization

from certwarden.ca import MemoryLedger
from certwarden.ca.hierarchy import init_ca
from certwarden.errors import UsageError
from certwarden.x509 import create as mk
from certwarden.x509 import der
from certwarden.x509.keys import (
    BACKDATE,
    CA_KEY_ALGORITHMS,
    KeyAlgorithm,
    generate_private_key,
    key_pem,
    random_serial,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_serials_are_positive_within_16_octets_and_random() -> None:
    serials = [random_serial() for _ in range(200)]
    assert len(set(serials)) == 200
    assert all(0 < s < 2**127 for s in serials)
    # DER INTEGER of each: positive (no sign octet needed) and at most 16 value octets
    assert all(len(der.content(der.integer(s))) <= 16 for s in serials)
    assert max(s.bit_length() for s in serials) >= 120  # the top bits are really drawn
    assert {s & 1 for s in serials} == {0, 1}  # and the low one (no forced "| 1")


def test_development_and_ca_certificates_share_the_back_date(tmp_path: Path) -> None:
    leaf = mk.self_signed(["a.test"], days=10, now=NOW).certificate
    assert leaf.not_before == NOW - BACKDATE
    assert leaf.not_after == NOW + dt.timedelta(days=10)
    ca = init_ca(MemoryLedger(), name="Unit", key_dir=tmp_path, passphrase=b"pw",
                 clock=lambda: NOW)
    root = cx509.load_der_x509_certificate(ca.root.certificate_der)
    assert root.not_valid_before_utc == NOW - BACKDATE
    assert dt.timedelta(minutes=1) == BACKDATE


def test_key_pem_encrypts_with_scrypt_and_reads_back() -> None:
    key = generate_private_key(KeyAlgorithm.EC_P256)
    pem = key_pem(key, b"secret")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    body = base64.b64decode(b"".join(pem.strip().splitlines()[1:-1]))
    assert der.oid("1.3.6.1.4.1.11591.4.11") in body  # id-scrypt
    back = serialization.load_pem_private_key(pem, b"secret")
    fmt = (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
           serialization.NoEncryption())
    assert back.private_bytes(*fmt) == key.private_bytes(*fmt)
    assert key_pem(key).startswith(b"-----BEGIN PRIVATE KEY-----")
    # a development certificate's key takes the same path
    issued = mk.self_signed(["b.test"], now=NOW)
    assert der.oid("1.3.6.1.4.1.11591.4.11") in base64.b64decode(
        b"".join(issued.key_pem(b"pw").strip().splitlines()[1:-1]))


def test_ca_keys_exclude_rsa_2048(tmp_path: Path) -> None:
    assert KeyAlgorithm.parse("rsa2048") is KeyAlgorithm.RSA_2048
    assert KeyAlgorithm.RSA_2048 not in CA_KEY_ALGORITHMS
    with pytest.raises(UsageError, match="unknown key algorithm 'rsa-2048'; one of: ec-p256"):
        KeyAlgorithm.parse("rsa-2048", among=CA_KEY_ALGORITHMS)
    with pytest.raises(UsageError, match="not a CA key algorithm"):
        init_ca(MemoryLedger(), name="Weak", key_dir=tmp_path, passphrase=b"pw",
                algorithm=KeyAlgorithm.RSA_2048)
    assert not list(tmp_path.iterdir())


def test_der_reader_and_writer_agree() -> None:
    assert der.integer(-1) == b"\x02\x01\xff"
    assert der.integer(-129) == b"\x02\x02\xff\x7f"
    long = der.seq(der.octets(b"x" * 300), der.integer(7))
    tag, start, end = der.tlv(long, 0)
    assert (tag, end) == (der.SEQUENCE, len(long))
    assert [t for t, _s, _e in der.elements(long, start, end)] == [der.OCTET_STRING, der.INTEGER]
    # header-only reading tells a cut element from a bad one
    assert der.header(long[:10]) == (der.SEQUENCE, 4, len(long) - 4)
    with pytest.raises(der.DERError, match="truncated"):
        der.tlv(long[:10], 0)
    with pytest.raises(der.DERError, match="bad DER length"):
        der.header(b"\x30\x85\x01\x00\x00\x00\x00")
    with pytest.raises(der.DERError, match="overruns"):
        der.tlv_within(long, start, start + 10)
