"""Real peers on 127.0.0.1: openssl verify / crl / ocsp / pkey, Python ssl, against our CA."""

from __future__ import annotations

import re
import ssl
import urllib.request
from pathlib import Path

import pytest
from ca_peer_support import base_env, cli, run, serving, split_chain, tls_roundtrip
from cryptography import x509

pytestmark = pytest.mark.peer("openssl")


@pytest.fixture
def ca(tmp_path: Path, openssl: str) -> tuple[dict[str, str], Path]:
    env = base_env(tmp_path)
    cli(env, "ca", "init", "--name", "Peer CA", "--spiffe-trust-domain", "example.org",
        cwd=tmp_path)
    cli(env, "ca", "root", "--out", "root.pem", cwd=tmp_path)
    return env, tmp_path


def _csr(openssl: str, cwd: Path, name: str, san: str) -> None:
    r = run(openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=cwd)
    assert r.returncode == 0, r.stderr


def test_verify_accepts_chains_and_crl_check_rejects_revoked(
        ca: tuple[dict[str, str], Path], openssl: str) -> None:
    env, d = ca
    for name in ("app.internal", "other.internal"):
        _csr(openssl, d, name, f"DNS:{name}")
        cli(env, "ca", "issue", f"{name}.csr", "--profile", "tls-server", "--out",
            f"{name}.pem", cwd=d)
    leaf, inter = split_chain(d / "app.internal.pem")
    other, _ = split_chain(d / "other.internal.pem")
    ok = run(openssl, "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", "root.pem",
             "-untrusted", str(inter), str(leaf), cwd=d)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().endswith("OK")
    cli(env, "ca", "revoke", "app.internal.pem", "--reason", "keyCompromise", cwd=d)
    cli(env, "ca", "crl", "--pem", "--out", "ca.crl.pem", cwd=d)
    args = ["verify", "-x509_strict", "-crl_check", "-CRLfile", "ca.crl.pem", "-CAfile",
            "root.pem", "-untrusted", str(inter)]
    bad = run(openssl, *args, str(leaf), cwd=d)
    assert bad.returncode != 0
    assert "certificate revoked" in bad.stdout + bad.stderr
    good = run(openssl, *args, str(other), cwd=d)
    assert good.returncode == 0, good.stdout + good.stderr
    text = run(openssl, "crl", "-in", "ca.crl.pem", "-noout", "-text", cwd=d).stdout
    assert "Key Compromise" in text
    assert re.search(r"CRL Number: \n\s+1\n", text)  # the intermediate's first CRL


def test_openssl_reads_our_scrypt_key_files(ca: tuple[dict[str, str], Path],
                                            openssl: str) -> None:
    _env, d = ca
    key = d / "data" / "certwarden" / "ca" / "peer-ca.key.pem"
    ok = run(openssl, "pkey", "-in", str(key), "-passin", "pass:peer-pass", "-noout", cwd=d)
    assert ok.returncode == 0, ok.stderr
    bad = run(openssl, "pkey", "-in", str(key), "-passin", "pass:nope", "-noout", cwd=d)
    assert bad.returncode != 0
    parsed = run(openssl, "asn1parse", "-in", str(key), cwd=d).stdout
    assert ":PBES2" in parsed
    assert ":scrypt" in parsed
    assert ":aes-256-cbc" in parsed


def test_openssl_ocsp_against_live_serve(ca: tuple[dict[str, str], Path], openssl: str) -> None:
    env, d = ca
    for name in ("good.internal", "bad.internal"):
        _csr(openssl, d, name, f"DNS:{name}")
        cli(env, "ca", "issue", f"{name}.csr", "--out", f"{name}.pem", cwd=d)
    good, inter = split_chain(d / "good.internal.pem")
    bad, _ = split_chain(d / "bad.internal.pem")
    cli(env, "ca", "revoke", "bad.internal.pem", "--reason", "keyCompromise", cwd=d)
    with serving(env, d) as base:
        def ask(*target: str) -> str:
            r = run(openssl, "ocsp", "-issuer", str(inter), *target, "-url", f"{base}/ocsp",
                    "-CAfile", "root.pem", "-resp_text", cwd=d)
            assert r.returncode == 0, r.stderr
            assert "Response verify OK" in r.stderr + r.stdout
            return r.stdout
        out = ask("-cert", str(good))
        assert re.search(r"good\.internal\.leaf\.pem: good", out)
        assert "OCSP Nonce" in out  # openssl sends a nonce by default; we echo it
        out = ask("-cert", str(bad))
        assert "bad.internal.leaf.pem: revoked" in out
        assert "Reason: keyCompromise" in out
        out = ask("-serial", "0x1234567890abcdef")
        assert "0x1234567890abcdef: unknown" in out
        # the AIA of the leaf points at this responder's path
        leaf = x509.load_pem_x509_certificate(good.read_bytes())
        aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        assert aia[0].access_location.value == "http://127.0.0.1:8080/ocsp"


def test_python_ssl_trusts_an_issued_server_cert_via_our_root_only(
        ca: tuple[dict[str, str], Path], openssl: str) -> None:
    env, d = ca
    cli(env, "ca", "issue", "--name", "localhost", "--name", "127.0.0.1", "--out", "srv.pem",
        cwd=d)
    assert tls_roundtrip(d / "srv.pem", d / "srv.key", d / "root.pem", "localhost") \
        == "hello from the issued cert"
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_roundtrip(d / "srv.pem", d / "srv.key", d / "root.pem", "elsewhere.internal")


def test_serve_https_with_a_certificate_of_our_own_ca(ca: tuple[dict[str, str], Path]) -> None:
    env, d = ca
    ctx = ssl.create_default_context(cafile=str(d / "root.pem"))
    with serving(env, d, scheme="https", ctx=ctx) as base, \
            urllib.request.urlopen(f"{base}/healthz", context=ctx, timeout=10) as r:  # noqa: S310
        assert r.status == 200


def test_spiffe_svid_passes_the_spec_rules(ca: tuple[dict[str, str], Path], openssl: str) -> None:
    env, d = ca
    _csr(openssl, d, "web", "URI:spiffe://example.org/ns/prod/sa/web")
    cli(env, "ca", "issue", "web.csr", "--profile", "spiffe", "--out", "svid.pem", cwd=d)
    leaf_path, inter = split_chain(d / "svid.pem")
    leaf = x509.load_pem_x509_certificate(leaf_path.read_bytes())
    # spiffe/standards X509-SVID.md: §2 exactly one URI SAN holding the SPIFFE ID;
    # §4.1 leaf: cA false; §4.3 keyUsage digitalSignature, no keyCertSign / cRLSign.
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["spiffe://example.org/ns/prod/sa/web"]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert not ku.value.key_cert_sign
    assert not ku.value.crl_sign
    for purpose in ("sslserver", "sslclient"):
        r = run(openssl, "verify", "-x509_strict", "-purpose", purpose, "-CAfile", "root.pem",
                "-untrusted", str(inter), str(leaf_path), cwd=d)
        assert r.returncode == 0, r.stdout + r.stderr


def test_serve_with_two_workers_answers_openssl(ca: tuple[dict[str, str], Path],
                                                openssl: str) -> None:
    env, d = ca
    cli(env, "ca", "issue", "--name", "w.internal", "--out", "w.pem", cwd=d)
    leaf, inter = split_chain(d / "w.pem")
    with serving(env, d, "--workers", "2") as base:
        for _ in range(3):  # whichever worker answers, the answer verifies
            r = run(openssl, "ocsp", "-issuer", str(inter), "-cert", str(leaf), "-url",
                    f"{base}/ocsp", "-CAfile", "root.pem", cwd=d)
            assert r.returncode == 0, r.stderr
            assert "w.leaf.pem: good" in r.stdout
            assert "Response verify OK" in r.stderr + r.stdout
