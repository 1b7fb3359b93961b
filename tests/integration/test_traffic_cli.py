"""``certwarden traffic`` through ``main(argv)`` and once as a subprocess, on real captures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from certwarden.cli import main
from tests.conftest import require_corpus


def _zeek(*parts: str) -> str:
    return str(require_corpus("zeek", "pcaps", *parts))


Rows = list[dict[str, Any]]


def _rows(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, Rows, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def test_sessions_and_certificates_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, _err = _rows(capsys, ["traffic", "--no-inventory", _zeek("tls", "tls1.2.pcap")])
    assert code == 0
    sessions = [r for r in rows if r["type"] == "session"]
    certs = [r for r in rows if r["type"] == "certificate"]
    assert len(sessions) == 1
    s = sessions[0]
    assert (s["client"], s["server"], s["server_port"]) == ("10.0.0.80", "68.233.76.12", 443)
    assert (s["version"], s["cipher"]) == ("TLSv12", "TLS_RSA_WITH_RC4_128_MD5")
    assert s["server_chain"] == [c["sha256"] for c in certs]
    assert s["ja3"]
    assert s["ja4"]
    assert s["ja4s"]
    assert all(c["ja4x"] for c in certs)
    assert rows[-1]["type"] == "capture"
    assert rows[-1]["error"] is None


def test_no_ja4plus_leaves_out_ja4s_and_ja4x(capsys: pytest.CaptureFixture[str]) -> None:
    _code, rows, _ = _rows(capsys, ["traffic", "--no-inventory", "--no-ja4plus",
                                    _zeek("tls", "tls1.2.pcap")])
    s = next(r for r in rows if r["type"] == "session")
    assert s["ja4s"] is None
    assert s["ja4"]
    assert all(r["ja4x"] is None for r in rows if r["type"] == "certificate")


def test_alerts_with_evidence(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A self-signed DTLS server, and an SSLBL listing made for its real certificate."""
    pcap = _zeek("tls", "dtls1_2.pcap")
    _code, rows, _ = _rows(capsys, ["traffic", "--no-inventory", pcap])
    cert = next(r for r in rows if r["type"] == "certificate")
    listed = tmp_path / "sslbl.csv"
    real = require_corpus("sslbl", "sslblacklist.csv").read_text()
    listed.write_text(real + f"2023-11-14 00:00:00,{cert['sha1']},TestFamily C&C\n")
    code, rows, _ = _rows(capsys, ["traffic", "--no-inventory", "--blocklist", str(listed),
                                   "--fail-on", "high", pcap])
    alerts = {r["rule"]: r for r in rows if r["type"] == "alert"}
    assert code == 1  # a high alert fired and --fail-on high was given
    assert alerts["self-signed-server"]["certificate"] == cert["sha256"]
    assert alerts["unknown-self-signed"]["evidence"]["inventory"] == "no inventory in use"
    assert alerts["sslbl-certificate"]["evidence"]["listing"].startswith("TestFamily C&C")
    # the first placeholder attribute in subject order is named (the subject has both)
    assert alerts["c2-placeholder-subject"]["evidence"]["matched"] == "O=Internet Widgits Pty Ltd"


def test_json_out_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    code = main(["traffic", "--no-inventory", "--json-out", str(out),
                 _zeek("tls", "tls-fragmented-handshake.pcap.gz")])
    _o, err = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    certs = [r for r in rows if r["type"] == "certificate"]
    # Zeek's fragmented-handshake trace: the Certificate message spans records AND segments
    # (tshark 4.0 finds nothing there); the SHA-256 is Zeek's, from expected_ssl.csv.
    assert [c["sha256"] for c in certs] == [
        "af4a46e989dc24078ee2a205490856e059e7f2f9d2114cec4d4c44974add9d34"]
    assert "1 sessions" in err


@pytest.mark.parametrize("content", [b"", b"not a capture at all",
                                     b"\xd4\xc3\xb2\xa1" + b"\x00" * 5])
def test_unreadable_capture_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    code = main(["traffic", "--no-inventory", str(bad), _zeek("tls", "tls1.2.pcap")])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "certwarden: error: 1 of 2 captures could not be read"
    assert f"{bad}" in err
    # the good capture was still analysed
    assert any(json.loads(line)["type"] == "session" for line in out.splitlines())


def test_missing_file_and_bad_blocklist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["traffic", str(tmp_path / "nope.pcap")]) == 2
    bl = tmp_path / "bl.csv"
    bl.write_text("nothing here\n")
    assert main(["traffic", "--blocklist", str(bl), _zeek("tls", "tls1.2.pcap")]) == 2
    err = capsys.readouterr().err
    assert "no such capture file" in err
    assert "no SHA-1" in err


def test_subprocess_smoke() -> None:
    exe = str(Path(sys.executable).parent / "certwarden")
    r = subprocess.run([exe, "traffic", "--no-inventory",
                        _zeek("tls", "smtp-starttls.pcap")],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    s = next(json.loads(x) for x in r.stdout.splitlines() if '"session"' in x)
    assert s["starttls"] == "smtp"
    assert len(s["server_chain"]) == 3


def test_certificate_cryptography_rejects_is_reported_not_fatal(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A certificate whose version field says 15 (cryptography raises InvalidVersion)."""
    from tests.unit.traffic import pcapgen as g
    from tests.unit.traffic.conftest import make_cert

    der = bytearray(make_cert())
    i = der.find(b"\xa0\x03\x02\x01\x02")  # [0] EXPLICIT INTEGER 2 (v3)
    der[i + 4] = 15
    client = g.records(g.client_hello())
    server = g.records(g.server_hello()) + g.records(g.certificate([bytes(der)]))
    frames = [(ts, g.frame(1, ip)) for ts, ip in g.tcp_flow(client, server)]
    pcap = tmp_path / "v15.pcap"
    pcap.write_bytes(g.pcap(frames))
    code, rows, _err = _rows(capsys, ["traffic", "--no-inventory", "--alerts", str(pcap)])
    assert code == 0
    s = next(r for r in rows if r["type"] == "session")
    assert s["server_chain"] == []
    assert "not a valid DER certificate" in s["unparsable_certificates"][0]
