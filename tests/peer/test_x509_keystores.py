"""Keystores made by the tools that make them in the wild: keytool (JKS, JCEKS, PKCS#12) and
openssl (PKCS#12, PKCS#7). Each is read by content, whatever its file name says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from certwarden.errors import PasswordError
from certwarden.x509 import Format, read_source
from certwarden.x509 import create as mk
from tests.conftest import require_tool

pytestmark = pytest.mark.peer("keytool")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, mk.CertifiedKey, mk.CertifiedKey]:
    d = tmp_path_factory.mktemp("ks")
    ca = mk.dev_ca("Keystore CA")
    leaf = mk.leaf(ca, ["ks.test"])
    (d / "ca.pem").write_text(ca.certificate.pem())
    (d / "leaf.pem").write_text(leaf.certificate.pem())
    (d / "leaf-key.pem").write_bytes(leaf.key_pem())
    return d, ca, leaf


@pytest.mark.parametrize(("storetype", "fmt"), [("JKS", Format.JKS), ("JCEKS", Format.JCEKS),
                                               ("PKCS12", Format.PKCS12)])
def test_keytool_truststores(pair: tuple[Path, mk.CertifiedKey, mk.CertifiedKey], storetype: str,
                             fmt: Format) -> None:
    keytool = require_tool("keytool")
    d, ca, _ = pair
    store = d / f"trust-{storetype}.keystore"  # the name says nothing about the format
    subprocess.run([keytool, "-importcert", "-noprompt", "-alias", "ca", "-file",
                    str(d / "ca.pem"), "-keystore", str(store), "-storetype", storetype,
                    "-storepass", "s3cret-pass"], check=True, capture_output=True, timeout=120)
    parsed = read_source(str(store), password=b"s3cret-pass")
    assert parsed.format is fmt
    assert ca.certificate in parsed.certificates
    with pytest.raises(PasswordError):
        read_source(str(store), password=b"wrong-pass")


def test_openssl_pkcs12_and_pkcs7(pair: tuple[Path, mk.CertifiedKey, mk.CertifiedKey]) -> None:
    openssl = require_tool("openssl")
    d, ca, leaf = pair
    subprocess.run([openssl, "pkcs12", "-export", "-in", str(d / "leaf.pem"), "-inkey",
                    str(d / "leaf-key.pem"), "-certfile", str(d / "ca.pem"), "-out",
                    str(d / "bundle.pem"), "-passout", "pass:pfxpass"], check=True, timeout=60)
    parsed = read_source(str(d / "bundle.pem"), password=b"pfxpass")
    assert parsed.format is Format.PKCS12
    assert parsed.certificates[0] == leaf.certificate
    assert ca.certificate in parsed.certificates
    assert parsed.keys[0].spki_sha256 == leaf.certificate.spki_sha256
    subprocess.run([openssl, "crl2pkcs7", "-nocrl", "-certfile", str(d / "leaf.pem"),
                    "-certfile", str(d / "ca.pem"), "-outform", "DER", "-out",
                    str(d / "chain.bin")], check=True, timeout=60)
    p7 = read_source(str(d / "chain.bin"))
    assert p7.format is Format.PKCS7
    assert set(p7.certificates) == {leaf.certificate, ca.certificate}
