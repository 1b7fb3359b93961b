"""Real peers on 127.0.0.1: openssl verify / crl / ocsp / pkey, Python ssl, against our CA."""

from __future__ import annotations

import contextlib
import datetime as dt
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


def _readme_ca_block() -> list[str]:
    """The README's private-CA shell block, one command per entry (continuations joined)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### ca, serve — the private CA", 1)[1]
    block = section.split("```", 2)[1]
    joined = block.replace("\\\n", " ")
    return [line.split("  #", 1)[0].strip() for line in joined.splitlines() if line.strip()]


def test_readme_ca_sequence_runs_as_written(tmp_path: Path, openssl: str) -> None:
    """Issue 11 item 12: every file the README's `openssl ocsp` reads is written by a command
    of the sequence (int.pem by `ca root --intermediate-out`), and the answers hold up."""
    import shlex

    env = base_env(tmp_path)
    d = tmp_path
    commands = _readme_ca_block()
    assert any("--intermediate-out int.pem" in c for c in commands)
    ocsp_out = ""
    serve_cmd = next(c for c in commands if c.endswith("&"))
    assert serve_cmd.startswith("certwarden serve --http 127.0.0.1:8080")
    base = ""
    with contextlib.ExitStack() as stack:
        for command in commands:
            argv = shlex.split(command)
            if argv[0] == "export":
                name, _, value = argv[1].partition("=")
                env[name] = value
            elif command.endswith("&"):  # the server, on a free port instead of 8080
                base = stack.enter_context(serving(env, d))
            elif argv[0] == "certwarden":
                cli(env, *argv[1:], cwd=d)
            else:
                assert argv[0] == "openssl", command
                argv = [a.replace("http://127.0.0.1:8080", base) for a in argv]
                r = run(openssl, *argv[1:], cwd=d, env=env)
                assert r.returncode == 0, (command, r.stderr)
                ocsp_out = r.stdout + r.stderr if argv[1] == "ocsp" else ocsp_out
        assert "Response verify OK" in ocsp_out
        assert "app.pem: revoked" in ocsp_out
        # thisUpdate of the OCSP answer and of the CRL never predate the revocation listed.
        detail = run(openssl, "ocsp", "-issuer", "int.pem", "-cert", "app.pem", "-url",
                     f"{base}/ocsp", "-CAfile", "root.pem", "-resp_text", "-no_nonce",
                     cwd=d, env=env).stdout
    revoked = _openssl_time(detail, "Revocation Time")
    assert _openssl_time(detail, "This Update") >= revoked
    crl = run(openssl, "crl", "-inform", "DER", "-in", "ca.crl", "-noout", "-text", cwd=d).stdout
    assert _openssl_time(crl, "Last Update") >= _openssl_time(crl, "Revocation Date")
    # The intermediate carries OCSP and CRL pointers as leaves do; its CRL is the root's.
    inter = x509.load_pem_x509_certificate((d / "int.pem").read_bytes())
    aia = inter.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [a.access_location.value for a in aia] == ["http://127.0.0.1:8080/ocsp"]
    cdp = inter.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for dp in cdp for n in dp.full_name or ()] == [
        "http://127.0.0.1:8080/crl/example-private-ca-root.crl"]


def _openssl_time(text: str, label: str) -> dt.datetime:
    found = re.search(rf"{label}: ?(\w{{3}} +\d+ \d\d:\d\d:\d\d \d{{4}}) GMT", text)
    assert found, (label, text)
    when = " ".join(found.group(1).split()) + " +0000"  # openssl prints GMT
    return dt.datetime.strptime(when, "%b %d %H:%M:%S %Y %z")


def test_openssl_ocsp_answers_for_the_intermediate_under_the_root(
        ca: tuple[dict[str, str], Path], openssl: str) -> None:
    env, d = ca
    cli(env, "ca", "root", "--out", "root.pem", "--intermediate-out", "int.pem",
        "--chain-out", "chain.pem", cwd=d)
    assert (d / "chain.pem").read_text() == (d / "int.pem").read_text() + \
        (d / "root.pem").read_text()
    with serving(env, d) as base:
        r = run(openssl, "ocsp", "-issuer", "root.pem", "-cert", "int.pem", "-url",
                f"{base}/ocsp", "-CAfile", "root.pem", cwd=d)
    assert r.returncode == 0, r.stderr
    assert "Response verify OK" in r.stderr + r.stdout
    assert "int.pem: good" in r.stdout
