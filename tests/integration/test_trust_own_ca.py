"""Issue 11 item 5: certwarden's own CA anchors the assessment without a policy file, and
``scan`` / ``report`` take ``--trust`` as ``inspect`` does.

Real components: the private CA (SQLite ledger, encrypted key files), ``replace --apply``, a
Python TLS server on 127.0.0.1 serving the replaced files (leaf + intermediate, no root),
the network scanner, and the report over the inventory it wrote.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from certwarden.cli import main
from certwarden.cli.demo_forge import forge
from certwarden.x509 import create as mk
from tests.tlsserver import TLSServer

CHAIN_RULES = {"incomplete-chain", "untrusted-chain"}
NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "trust-test-passphrase")
    monkeypatch.setenv("CERTWARDEN_CA_DIR", str(tmp_path / "ca"))
    etc = tmp_path / "etc"
    etc.mkdir()
    ss = mk.self_signed(["localhost", "127.0.0.1"])
    (etc / "web.pem").write_text(ss.certificate.pem())
    mk.write_private(etc / "web-key.pem", ss.key_pem())
    return tmp_path


def _scan_findings(port: int, capsys: pytest.CaptureFixture[str], *extra: str) -> set[str]:
    capsys.readouterr()
    assert main(["scan", f"127.0.0.1:{port}", "--sni", "localhost", "--starttls", "none",
                 "--json-out", "-", *extra]) == 0
    [endpoint] = json.loads(capsys.readouterr().out)
    assert endpoint["status"] == "ok"
    return {f["rule"] for f in endpoint["findings"]}


def _report(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["report", "--format", "json", *extra]) == 0
    return list(json.loads(capsys.readouterr().out)["findings"])


def test_after_replace_our_chain_is_trusted_without_a_policy(
        estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc = estate / "etc"
    assert main(["ca", "init", "--name", "Own CA"]) == 0
    assert main(["discover", "files", str(etc)]) == 0
    assert main(["replace", "--apply", "--json", "--out", str(estate / "out")]) == 0
    chain = (etc / "web.pem").read_text()
    assert chain.count("BEGIN CERTIFICATE") == 2  # leaf + intermediate, the root left out
    with TLSServer(chain, (etc / "web-key.pem").read_bytes(), estate / "srv") as srv:
        found = _scan_findings(srv.port, capsys)
        assert found & CHAIN_RULES == set(), found
    served = [f for f in _report(capsys) if str(f["location"]).startswith("tls://")]
    assert {f["rule"] for f in served} & CHAIN_RULES == set(), served


def test_scan_and_report_take_trust_like_inspect(
        estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Someone else's private CA: leaf + intermediate served, the root only in a file we hold.
    root = forge(subject="CN=Elsewhere Root", sans=(), ca=True, not_before=NOW - 9 * DAY,
                 days=3650)
    inter = forge(subject="CN=Elsewhere Issuing", sans=(), ca=True, issuer=root,
                  not_before=NOW - 9 * DAY, days=900)
    leaf = forge(subject="CN=localhost", sans=("localhost", "127.0.0.1"), issuer=inter,
                 not_before=NOW - DAY, days=30)
    anchor = estate / "elsewhere-root.pem"
    anchor.write_bytes(root.pem())
    chain = (leaf.pem() + inter.pem()).decode()
    with TLSServer(chain, leaf.key_pem(), estate / "srv") as srv:
        without = _scan_findings(srv.port, capsys)
        assert "untrusted-chain" in without
        assert "incomplete-chain" not in without  # nothing a client needs is missing
        assert _scan_findings(srv.port, capsys, "--trust", str(anchor)) & CHAIN_RULES == set()
    untrusted = [f for f in _report(capsys) if f["rule"] == "untrusted-chain"]
    assert untrusted
    assert "CN=Elsewhere Root" in str(untrusted[0]["message"])  # the root that is needed
    assert untrusted[0]["evidence"]["root_needed"] == "CN=Elsewhere Root"  # type: ignore[index]
    trusted = _report(capsys, "--trust", str(anchor))
    assert {f["rule"] for f in trusted} & CHAIN_RULES == set()


@pytest.mark.parametrize("command", [["scan", "127.0.0.1:1"], ["report"]])
def test_bad_trust_is_one_line_exit_2(estate: Path, command: list[str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--trust", str(estate / "missing.pem")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "missing.pem" in err


def test_a_certificate_our_ca_revoked_is_revoked_in_scan_and_report(
        estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11 item 13: our own CA's ledger is read directly, no CRL or OCSP fetch needed."""
    assert main(["ca", "init", "--name", "Own CA"]) == 0
    srv = estate / "srv.pem"
    assert main(["ca", "issue", "--name", "localhost", "--name", "127.0.0.1",
                 "--out", str(srv)]) == 0
    chain = srv.read_text()
    key = (estate / "srv.key").read_bytes()
    with TLSServer(chain, key, estate / "tls") as server:
        assert "revoked" not in _scan_findings(server.port, capsys)
        assert main(["ca", "revoke", str(srv), "--reason", "keyCompromise"]) == 0
        assert "revoked" in _scan_findings(server.port, capsys)
    [finding] = [f for f in _report(capsys) if f["rule"] == "revoked"]
    assert finding["severity"] == "critical"
    evidence = finding["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["source"] == "ledger"
    assert evidence["reason"] == "keyCompromise"
