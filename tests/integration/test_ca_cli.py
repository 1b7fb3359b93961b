"""``certwarden ca ...`` through ``main(argv)``: the README sequence and bad input of every kind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certwarden.cli import main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "correct horse")
    monkeypatch.delenv("CERTWARDEN_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _csr(path: Path, *names: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
           .sign(key, hashes.SHA256()))
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_readme_sequence(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "ca", "init", "--name", "Example Private CA")[0] == 0
    keys = sorted((env / "data" / "certwarden" / "ca").iterdir())
    assert [k.name for k in keys] == ["example-private-ca-root.key.pem",
                                      "example-private-ca.key.pem"]
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)
    assert b"correct horse" not in b"".join(k.read_bytes() for k in keys)
    assert _run(capsys, "ca", "root", "--out", "root.pem")[0] == 0
    root = x509.load_pem_x509_certificate((env / "root.pem").read_bytes())
    assert root.subject == root.issuer
    _csr(env / "app.csr", "app.internal")
    code, _, err = _run(capsys, "ca", "issue", "app.csr", "--profile", "tls-server",
                        "--out", "app.pem")
    assert code == 0
    assert "issued serial" in err
    chain = x509.load_pem_x509_certificates((env / "app.pem").read_bytes())
    assert len(chain) == 2
    assert chain[0].issuer == chain[1].subject
    assert chain[1].issuer == root.subject
    code, out, _ = _run(capsys, "ca", "revoke", "app.pem", "--reason", "keyCompromise")
    assert code == 0
    assert f"{chain[0].serial_number:032x}" in out
    assert _run(capsys, "ca", "crl", "--out", "ca.crl")[0] == 0
    crl = x509.load_der_x509_crl((env / "ca.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(chain[0].serial_number) is not None
    assert _run(capsys, "ca", "crl", "--pem", "--out", "ca.pem.crl")[0] == 0
    crl2 = x509.load_pem_x509_crl((env / "ca.pem.crl").read_bytes())
    assert crl2.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == \
        crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    code, out, _ = _run(capsys, "ca", "list")
    assert "revoked:keyCompromise" in out
    code, out, _ = _run(capsys, "ca", "list", "--audit", "--json")
    assert '"action": "revoke"' in out


def test_issue_by_name_writes_a_0600_key(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "ca", "init", "--name", "N CA", "--allow-dns", "internal")[0] == 0
    assert _run(capsys, "ca", "issue", "--name", "svc.internal", "--out", "svc.pem")[0] == 0
    assert stat.S_IMODE((env / "svc.key").stat().st_mode) == 0o600
    key = serialization.load_pem_private_key((env / "svc.key").read_bytes(), None)
    leaf = x509.load_pem_x509_certificates((env / "svc.pem").read_bytes())[0]
    assert leaf.public_key() == key.public_key()
    code, _, err = _run(capsys, "ca", "issue", "--name", "svc.example.com", "--out", "x.pem")
    assert code == 2
    assert "outside the allowed DNS suffixes" in err
    assert not (env / "x.pem").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["ca", "issue", "--name", "a.internal"], "no CA here yet"),
    (["ca", "revoke", "0x12", "--reason", "keyCompromise"], "was not issued"),
    (["ca", "root"], "no CA here yet"),
])
def test_before_init(env: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                     message: str) -> None:
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_input_is_one_line_and_exit_2(env: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(capsys, "ca", "init", "--name", "Bad CA")[0] == 0
    (env / "garbage.csr").write_text("hello")
    _csr(env / "ok.csr", "ok.internal")
    cases = [
        (["ca", "init", "--name", "Bad CA"], "already exists"),
        (["ca", "init", "--name", "X", "--key-algorithm", "dsa"], "unknown key algorithm"),
        (["ca", "init", "--name", "Y", "--base-url", "gopher://x"], "base URL"),
        (["ca", "issue", "missing.csr"], "No such file"),
        (["ca", "issue", "garbage.csr"], "not a certificate signing request"),
        (["ca", "issue", "ok.csr", "--profile", "nope"], "unknown profile"),
        (["ca", "issue", "ok.csr", "--lifetime-days", "400"], "lifetime"),
        (["ca", "issue"], "give a CSR"),
        (["ca", "revoke", "zz", "--reason", "keyCompromise"], "not a serial"),
        (["ca", "revoke", "0x12", "--reason", "because"], "unknown revocation reason"),
        (["ca", "crl", "--ca", "nope"], "no CA named"),
    ]
    for argv, message in cases:
        code, _, err = _run(capsys, *argv)
        assert code == 2, argv
        assert message in err, (argv, err)
        assert err.count("\n") == 1, (argv, err)
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "wrong")
    code, _, err = _run(capsys, "ca", "issue", "ok.csr")
    assert code == 2
    assert "wrong passphrase" in err
    monkeypatch.delenv("CERTWARDEN_CA_PASSPHRASE")
    (env / "pass.txt").write_text("correct horse\n")
    code, _, _ = _run(capsys, "ca", "issue", "ok.csr", "--passphrase-file", "pass.txt",
                      "--out", "ok.pem")
    assert code == 0


def test_subprocess_smoke(env: Path) -> None:
    run_env = {**os.environ, "XDG_DATA_HOME": str(env / "data"),
               "CERTWARDEN_CA_PASSPHRASE": "pw"}
    cmd = [str(Path(sys.executable).parent / "certwarden")]
    r = subprocess.run([*cmd, "ca", "init", "--name", "Sub CA"], env=run_env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*cmd, "ca", "issue", "--name", "bad..name", "--out", "b.pem"],
                       env=run_env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("certwarden: error: request refused")
    assert "Traceback" not in r.stderr


def test_serve_refuses_to_start_without_the_issuing_key(
        env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(capsys, "ca", "init", "--name", "Serve CA")[0] == 0
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "wrong")
    for extra in ([], ["--workers", "2"]):
        code, _, err = _run(capsys, "serve", "--http", "127.0.0.1:1", *extra)
        assert code == 2
        assert "wrong passphrase" in err
    code, _, err = _run(capsys, "serve", "--http", "nonsense")
    assert code == 2
    assert "expected HOST:PORT" in err
