"""Encrypted PKCS#8 key files (scrypt), key algorithms, and the DER helpers they use."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from certwarden.ca.keys import load_key_file, write_key_file
from certwarden.errors import PasswordError, UsageError
from certwarden.x509 import der
from certwarden.x509.keys import KeyAlgorithm, encrypt_pkcs8, generate_private_key


@pytest.mark.parametrize("alg", list(KeyAlgorithm))
def test_key_file_roundtrip_is_0600_scrypt_and_exact(tmp_path: Path, alg: KeyAlgorithm) -> None:
    key = generate_private_key(alg)
    path = tmp_path / "k" / "ca.key.pem"
    write_key_file(path, key, b"pass phrase")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_bytes()
    assert text.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert der.oid("1.3.6.1.4.1.11591.4.11") in _der_of(text)  # id-scrypt inside PBES2
    back = load_key_file(path, b"pass phrase")
    fmt = (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
           serialization.NoEncryption())
    assert back.private_bytes(*fmt) == key.private_bytes(*fmt)


def _der_of(pem: bytes) -> bytes:
    import base64

    body = b"".join(pem.strip().splitlines()[1:-1])
    return base64.b64decode(body)


def test_wrong_passphrase_is_a_password_error(tmp_path: Path) -> None:
    path = tmp_path / "ca.key.pem"
    write_key_file(path, generate_private_key(KeyAlgorithm.EC_P256), b"right")
    with pytest.raises(PasswordError, match="wrong passphrase"):
        load_key_file(path, b"wrong")


def test_never_overwrites_a_key_and_refuses_empty_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "ca.key.pem"
    key = generate_private_key(KeyAlgorithm.EC_P256)
    write_key_file(path, key, b"one")
    before = path.read_bytes()
    with pytest.raises(UsageError, match="already exists"):
        write_key_file(path, key, b"two")
    assert path.read_bytes() == before
    with pytest.raises(UsageError, match="empty passphrase"):
        encrypt_pkcs8(key, b"")


def test_key_algorithm_names() -> None:
    assert KeyAlgorithm.parse("P-256") is KeyAlgorithm.EC_P256
    assert KeyAlgorithm.parse("rsa4096") is KeyAlgorithm.RSA_4096
    with pytest.raises(UsageError, match="unknown key algorithm"):
        KeyAlgorithm.parse("dsa-1024")


def test_der_encoders_match_known_encodings() -> None:
    # Known encodings: X.690 examples and the ecdsa-with-SHA256 OID as every cert carries it.
    assert der.oid("1.2.840.10045.4.3.2") == bytes.fromhex("06082a8648ce3d040302")
    assert der.integer(0) == b"\x02\x01\x00"
    assert der.integer(128) == b"\x02\x02\x00\x80"
    long = der.octets(b"x" * 300)
    assert long[:4] == b"\x04\x82\x01\x2c"
    assert der.children(der.seq(der.integer(1), der.octets(b"ab"))) == [b"\x02\x01\x01",
                                                                         b"\x04\x02ab"]
    with pytest.raises(ValueError, match="truncated"):
        der.children(b"\x30\x05\x02\x01")
