"""Every container format, detected by content; every kind of bad input, one clear error."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import jks
import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certwarden.errors import ParseError, PasswordError
from certwarden.x509 import Format, iter_sources, parse_bytes, read_source
from certwarden.x509 import create as mk


@pytest.fixture(scope="module")
def chain() -> tuple[mk.CertifiedKey, mk.CertifiedKey]:
    ca = mk.dev_ca("Parse CA")
    return ca, mk.leaf(ca, ["parse.test"])


def _crypto(issued: mk.CertifiedKey) -> cx509.Certificate:
    return cx509.load_der_x509_certificate(issued.certificate.der)


def test_pem_many_blocks_with_text_around(chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    ca, leaf = chain
    data = ("subject=CN = parse.test\nsome text a tool printed\n" + leaf.certificate.pem()
            + "\n# comment between\n" + ca.certificate.pem() + "trailing words\n").encode()
    parsed = parse_bytes(data, source="bundle.txt")
    assert parsed.format is Format.PEM
    assert [c.sha256 for c in parsed.certificates] == [leaf.certificate.sha256,
                                                       ca.certificate.sha256]


def test_bad_block_is_skipped_and_named(chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    bad = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"
    parsed = parse_bytes(bad + chain[0].certificate.pem().encode(), source="mixed.pem")
    assert parsed.certificates == (chain[0].certificate,)
    assert parsed.problems == ("PEM block 1: bad base64 in PEM block",)


def test_pem_with_key_reports_key_facts_not_the_key(
        chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    _, leaf = chain
    parsed = parse_bytes(leaf.certificate.pem().encode() + leaf.key_pem(), source="pair.pem")
    assert len(parsed.keys) == 1
    assert parsed.keys[0].encrypted is False
    assert parsed.keys[0].spki_sha256 == leaf.certificate.spki_sha256
    enc = parse_bytes(leaf.certificate.pem().encode() + leaf.key_pem(b"pw"), source="enc.pem")
    assert enc.keys[0].encrypted is True
    assert enc.keys[0].spki_sha256 is None


def test_der_and_base64_der(chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    _, leaf = chain
    der = parse_bytes(leaf.certificate.der)
    assert der.format is Format.DER
    b64 = parse_bytes(base64.encodebytes(leaf.certificate.der))
    assert b64.format is Format.BASE64_DER
    assert der.certificates == b64.certificates


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
def test_pkcs7(chain: tuple[mk.CertifiedKey, mk.CertifiedKey],
               encoding: serialization.Encoding) -> None:
    ca, leaf = chain
    data = pkcs7.serialize_certificates([_crypto(leaf), _crypto(ca)], encoding)
    parsed = parse_bytes(data, source="bundle.p7b")
    assert {c.sha256 for c in parsed.certificates} == {leaf.certificate.sha256,
                                                       ca.certificate.sha256}


def test_pkcs12_password_right_wrong_missing(
        chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    ca, leaf = chain
    p12 = pkcs12.serialize_key_and_certificates(
        b"leaf", leaf.key, _crypto(leaf), [_crypto(ca)],  # type: ignore[arg-type]
        serialization.BestAvailableEncryption(b"s3cret"))
    parsed = parse_bytes(p12, source="leaf.crt", password=b"s3cret")  # extension lies: content wins
    assert parsed.format is Format.PKCS12
    assert parsed.certificates[0] == leaf.certificate
    assert parsed.keys[0].spki_sha256 == leaf.certificate.spki_sha256
    with pytest.raises(PasswordError, match="wrong password"):
        parse_bytes(p12, source="leaf.p12", password=b"nope")
    with pytest.raises(PasswordError, match="needs a password"):
        parse_bytes(p12, source="leaf.p12")


def test_pkcs12_without_password(chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    _, leaf = chain
    p12 = pkcs12.serialize_key_and_certificates(
        None, leaf.key, _crypto(leaf), None, serialization.NoEncryption())  # type: ignore[arg-type]
    parsed = parse_bytes(p12, source="open.pfx")
    assert parsed.certificates[0] == leaf.certificate


def test_java_keystore(chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    # pyjks writes JKS only; JCEKS is made by the real keytool in tests/peer.
    ca, _leaf = chain
    entry = jks.TrustedCertEntry.new("ca", ca.certificate.der)
    data = jks.KeyStore.new("jks", [entry]).saves("changeit")
    parsed = parse_bytes(data, source="trust.jks")
    assert parsed.format is Format.JKS
    assert parsed.certificates == (ca.certificate,)
    with pytest.raises(PasswordError):
        parse_bytes(data, source="trust.jks", password=b"wrong")


BAD_INPUTS = {
    "empty": b"",
    "whitespace": b"   \n\t ",
    "binary junk": os.urandom(64).replace(b"0", b"1").replace(b"-", b"_"),
    "text": b"hello, this is not a certificate\n",
    "truncated pem": b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n",
    "bad base64 pem": b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    "der header only": b"\x30\x82\x05\x00",
    "jks magic only": b"\xfe\xed\xfe\xed\x00",
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_one_line_parse_error(name: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_bytes(BAD_INPUTS[name], source=f"{name}.bin")
    assert err.value.source == f"{name}.bin"
    assert "\n" not in str(err.value)


def test_truncated_der_names_the_lengths(chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    der = chain[1].certificate.der
    with pytest.raises(ParseError, match="truncated DER"):
        parse_bytes(der[: len(der) // 2], source="cut.der")


def test_large_junk_file_is_refused_quickly(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        fh.write(b"\x00" * (50 * 1024 * 1024))
    with pytest.raises(ParseError, match="no certificate found"):
        read_source(str(big))
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as fh:
        fh.truncate(70 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(ParseError, match="larger than"):
        read_source(str(huge))


def test_directory_walk_keeps_going_past_bad_files(
        tmp_path: Path, chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    ca, leaf = chain
    (tmp_path / "a.pem").write_text(leaf.certificate.pem())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.der").write_bytes(ca.certificate.der)
    (tmp_path / "sub" / "junk.txt").write_text("nope")
    results = list(iter_sources([str(tmp_path)]))
    good = [r for r in results if not isinstance(r, ParseError)]
    bad = [r for r in results if isinstance(r, ParseError)]
    assert len(good) == 2
    assert len(bad) == 1
    assert bad[0].source.endswith("junk.txt")


def test_missing_file() -> None:
    with pytest.raises(ParseError, match="No such file"):
        read_source("/nonexistent/cert.pem")


def test_parse_with_passwords_tries_each_then_names_the_last_error(
        chain: tuple[mk.CertifiedKey, mk.CertifiedKey]) -> None:
    from certwarden.x509.parse import parse_with_passwords

    _, leaf = chain
    p12 = pkcs12.serialize_key_and_certificates(
        b"leaf", leaf.key, _crypto(leaf), None,  # type: ignore[arg-type]
        serialization.BestAvailableEncryption(b"third"))
    parsed = parse_with_passwords(p12, source="s.p12", passwords=[b"one", b"two", b"third"])
    assert parsed.certificates == (leaf.certificate,)
    with pytest.raises(PasswordError):
        parse_with_passwords(p12, source="s.p12", passwords=[b"one", b"two"])
    with pytest.raises(ParseError, match="empty input"):
        parse_with_passwords(b"", source="e", passwords=[b"one", b"two"])
