"""`certwarden inspect` and `create` driven through main(argv), plus one subprocess smoke test."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from certwarden.cli import main
from certwarden.x509 import create as mk
from certwarden.x509 import read_source
from tests.tlsserver import TLSServer

REQUIRED_KEYS = {"sha256", "sha1", "spki_sha256", "subject", "issuer", "serial", "not_before",
                 "not_after", "sans", "key", "signature_algorithm", "is_ca", "kind", "source"}


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_inspect_json_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ss = mk.self_signed(["json.test", "192.0.2.7"])
    (tmp_path / "c.pem").write_text(ss.certificate.pem())
    assert main(["inspect", "--json", str(tmp_path / "c.pem")]) == 0
    [obj] = _json_lines(capsys.readouterr().out)
    assert obj.keys() >= REQUIRED_KEYS
    assert obj["sha256"] == ss.certificate.sha256
    assert obj["kind"] == "self-signed"
    assert obj["sans"] == {"dns": ["json.test"], "ip": ["192.0.2.7"], "uri": [], "email": [],
                           "other": []}
    assert obj["key"] == {"type": "ec", "bits": 256, "curve": "secp256r1"}


def test_inspect_stdin_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ca = mk.dev_ca("Dir CA")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ca.der").write_bytes(ca.certificate.der)
    (tmp_path / "d" / "notes.txt").write_text("no certificate here")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ca.certificate.pem().encode())))
    assert main(["inspect", "--json", "-", str(tmp_path / "d")]) == 0
    out, err = capsys.readouterr()
    objs = _json_lines(out)
    assert [o["source"] for o in objs] == ["<stdin>", str(tmp_path / "d" / "ca.der")]
    assert "skipped" in err
    assert "notes.txt" in err


def test_inspect_live_endpoint_full_chain(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    ca = mk.dev_ca("Live CA")
    leaf = mk.leaf(ca, ["localhost"])
    (tmp_path / "ca.pem").write_text(ca.certificate.pem())
    trust = ["inspect", "--json", "--trust", str(tmp_path / "ca.pem")]
    with TLSServer(leaf.certificate.pem() + ca.certificate.pem(), leaf.key_pem(),
                   tmp_path / "srv") as srv:
        target = f"127.0.0.1:{srv.port}"
        assert main([*trust, "--sni", "localhost", target]) == 0
        by_name = _json_lines(capsys.readouterr().out)
        assert main([*trust, target]) == 0
        by_ip = _json_lines(capsys.readouterr().out)
    assert [o["sha256"] for o in by_name] == [leaf.certificate.sha256, ca.certificate.sha256]
    assert by_name[0]["source"] == f"tls://{target}"
    # Checked for the name the client asked for: SNI "localhost" is in the leaf ...
    assert by_name[0]["verification"] == ["ok"]
    # ... the bare IP is not.
    assert by_ip[0]["verification"] == ["hostname-mismatch"]


def test_inspect_against_system_and_certifi_stores(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ss = mk.self_signed(["nobody-trusts.test"])
    (tmp_path / "c.pem").write_text(ss.certificate.pem())
    for store in ("system", "certifi"):
        assert main(["inspect", "--json", "--trust", store, str(tmp_path / "c.pem")]) == 0
        [obj] = _json_lines(capsys.readouterr().out)
        assert obj["verification"] == ["self-signed"]


def test_inspect_table_names_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ss = mk.self_signed(["table.test"])
    (tmp_path / "c.pem").write_text(ss.certificate.pem())
    assert main(["inspect", str(tmp_path / "c.pem")]) == 0
    out = capsys.readouterr().out
    assert "self-signed" in out
    assert "CN=table.test" in out


@pytest.mark.parametrize("argv", [
    ["inspect", "/nonexistent.pem"],
    ["inspect", "127.0.0.1:1"],
    ["inspect", "--trust", "/nonexistent-dir", "/etc/hostname"],
    ["inspect"],
    ["inspect", "--timeout", "abc", "x"],
    ["create", "self-signed", "bad name!"],
    ["create", "leaf", "--ca", "/nonexistent", "x.test"],
    ["nosuchcommand"],
])
def test_bad_usage_is_one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("certwarden: error:")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_create_then_inspect_roundtrip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["create", "ca", "--dir", "dev"]) == 0
    assert main(["create", "leaf", "--ca", "dev", "svc.test", "127.0.0.1", "--out", "svc"]) == 0
    assert main(["create", "csr", "req.test"]) == 0
    assert oct((tmp_path / "svc-key.pem").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "dev" / "ca-key.pem").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "req.test-key.pem").stat().st_mode & 0o777) == "0o600"
    leaf = read_source(str(tmp_path / "svc.pem")).certificates[0]
    assert leaf.sans.ip == ("127.0.0.1",)
    capsys.readouterr()
    assert main(["inspect", "--json", "--trust", "dev/ca.pem", "svc.pem"]) == 0
    [obj] = _json_lines(capsys.readouterr().out)
    assert obj["verification"] == ["ok"]
    # A second `create ca` into the same directory must not overwrite the key.
    assert main(["create", "ca", "--dir", "dev"]) == 2


def test_passphrase_protected_key(tmp_path: Path) -> None:
    assert main(["create", "self-signed", "enc.test", "--out", str(tmp_path / "enc"),
                 "--passphrase", "pw"]) == 0
    parsed = read_source(str(tmp_path / "enc-key.pem"))
    assert parsed.keys[0].encrypted is True


def test_subprocess_smoke(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "certwarden"
    out = subprocess.run([str(exe), "inspect", "/dev/null"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "certwarden: error: /dev/null: empty input"
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0
    assert "certwarden" in version.stdout


def test_inspect_shows_findings_for_what_it_saw(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ss = mk.self_signed(["localhost"])
    with TLSServer(ss.certificate.pem(), ss.key_pem(), tmp_path / "srv") as srv:
        assert main(["inspect", "--json", "--sni", "www.example.test",
                     f"127.0.0.1:{srv.port}"]) == 0
        [obj] = _json_lines(capsys.readouterr().out)
        assert main(["inspect", "--json", f"127.0.0.1:{srv.port}"]) == 0
        [by_ip] = _json_lines(capsys.readouterr().out)
    rules = {f["rule"] for f in obj["findings"]}  # type: ignore[union-attr]
    # Served to a client that asked for www.example.test: self-signed, and not its name.
    assert {"self-signed", "hostname-mismatch"} <= rules
    assert "expired" not in rules
    # Asked by bare IP without SNI there is no name to check (issue 11 item 10).
    ip_rules = {f["rule"] for f in by_ip["findings"]}  # type: ignore[union-attr]
    assert "self-signed" in ip_rules
    assert "hostname-mismatch" not in ip_rules
