"""Issue 11 on what people actually run: Debian's nginx, Postfix and Dovecot on 127.0.0.1,
with certificates made the usual way (`openssl req -x509`, which marks them CA:TRUE).

Each test drives the real `certwarden` commands (scan, discover files, report, replace,
inventory) against the real servers (fixtures in tests/realservers.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from certwarden.cli import main
from tests.realservers import Served, req_x509

pytestmark = pytest.mark.peer("nginx, postfix, dovecot")

Factory = Callable[..., Served]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "realservers-test-passphrase")
    monkeypatch.setenv("CERTWARDEN_CA_DIR", str(tmp_path / "ca"))
    return tmp_path


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> object:
    capsys.readouterr()
    assert main(argv) == code
    return json.loads(capsys.readouterr().out)


def _findings(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    data = _json(capsys, ["report", "--format", "json"])
    assert isinstance(data, dict)
    return list(data["findings"])


def _rules_at(findings: list[dict[str, object]], port: int) -> set[str]:
    return {str(f["rule"]) for f in findings if f":{port}" in str(f["location"])}


def test_nginx_req_x509_wildcard_is_judged_and_replaced_as_the_leaf_it_is(
        env: Path, nginx_server: Factory, capsys: pytest.CaptureFixture[str]) -> None:
    # Items 1 and 2: a 7,300-day wildcard CA:TRUE self-signed certificate served by nginx.
    certs = env / "etc-nginx"
    certs.mkdir()
    req_x509(certs / "wild.pem", certs / "wild.key", cn="*.example.test", days=7300,
             sans="DNS:*.example.test")
    web = nginx_server(certs / "wild.pem", certs / "wild.key")
    assert main(["scan", f"www.example.test@127.0.0.1:{web.port}"]) == 0
    assert main(["discover", "files", str(certs)]) == 0

    findings = _findings(capsys)
    served = _rules_at(findings, web.port)
    assert {"self-signed", "validity-too-long", "wildcard", "ca-cert-served-as-leaf"} <= served
    assert "never-expires" not in served  # 20 years is long, not "no expiry" (item 8)
    assert "hostname-mismatch" not in served  # www.example.test is covered by the wildcard
    stored = {str(f["rule"]) for f in findings if str(f["location"]).endswith("/wild.pem")}
    assert {"self-signed", "validity-too-long", "wildcard"} <= stored
    # The key is 0600, readable by its owner only: unencrypted, not exposed (item 11).
    assert "private-key-unencrypted" in stored
    assert "private-key-exposed" not in stored

    # replace selects both: where nginx serves it, and the file with its key.
    assert main(["ca", "init", "--name", "Estate CA"]) == 0
    plan = _json(capsys, ["replace", "--dry-run", "--json"])
    assert isinstance(plan, list)
    planned = {p["location"]: p for p in plan}
    served_at, stored_at = (f"tls://127.0.0.1:{web.port}?sni=www.example.test",
                            f"file://{certs}/wild.pem")
    assert planned[stored_at]["action"] == "in-place"
    # The endpoint is planned on its own, or (with deploy) verified as part of the file's item.
    assert served_at in planned or served_at in planned[stored_at].get("served", [])
    assert set(planned) <= {served_at, stored_at}

    # Applied, nginx restarted on the new files, rescanned: nothing self-signed is left and
    # the fresh 30-day leaf is not "expiring soon" (item 7).
    _json(capsys, ["replace", "--apply", "--json", "--out", str(env / "out"),
                   "--location", "file://*"])
    web.restart()
    assert main(["scan", f"www.example.test@127.0.0.1:{web.port}"]) == 0
    after = _rules_at(_findings(capsys), web.port)
    assert not after & {"self-signed", "expiring-soon", "validity-too-long",
                        "ca-cert-served-as-leaf", "hostname-mismatch"}, after
    assert "wildcard" in after  # the replacement carries the old names, *.example.test too
    backups = list((certs / ".certwarden-backup").iterdir())
    assert len(backups) == 2  # certificate and key, out of the sweep's way (item 3)
    assert main(["discover", "files", str(certs)]) == 0
    assert _json(capsys, ["replace", "--dry-run", "--json", "--location", "file://*"]) == []


def test_postfix_825_day_certificate_over_starttls_is_validity_too_long(
        env: Path, postfix_server: Factory, capsys: pytest.CaptureFixture[str]) -> None:
    # Item 2: Postfix's 825-day self-signed certificate (CA:TRUE, as openssl makes it).
    conf = env / "etc-postfix"
    conf.mkdir()
    req_x509(conf / "smtpd.pem", conf / "smtpd.key", cn="mail.example.test", days=825,
             sans="DNS:mail.example.test")
    mail = postfix_server(conf / "smtpd.pem", conf / "smtpd.key")
    assert main(["scan", "--starttls", "smtp", f"mail.example.test@127.0.0.1:{mail.port}"]) == 0
    findings = _findings(capsys)
    at = [f for f in findings if f":{mail.port}" in str(f["location"])]
    assert {str(f["location"]) for f in at} == {
        f"tls://127.0.0.1:{mail.port}?sni=mail.example.test&starttls=smtp"}
    rules = {str(f["rule"]) for f in at}
    assert {"self-signed", "validity-too-long", "ca-cert-served-as-leaf"} <= rules
    [long] = [f for f in at if f["rule"] == "validity-too-long"]
    assert str(long["message"]).startswith("valid for 826 days")  # 825 days + 1 s, rounded up
    plan = _json(capsys, ["replace", "--dry-run", "--json"])
    assert [p["location"] for p in plan] == [
        f"tls://127.0.0.1:{mail.port}?sni=mail.example.test&starttls=smtp"]


def test_dovecot_rescan_of_other_ports_keeps_its_locations(
        env: Path, dovecot_server: Factory, nginx_server: Factory,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Items 9 and 10: scan Dovecot's IMAP (STARTTLS) and IMAPS ports by IP, then scan
    # another port of the same host: nothing of Dovecot's is gone.
    conf = env / "etc-dovecot"
    conf.mkdir()
    req_x509(conf / "imap.pem", conf / "imap.key", cn="imap.example.test", days=365,
             sans="DNS:imap.example.test")
    imap = dovecot_server(conf / "imap.pem", conf / "imap.key")
    req_x509(conf / "web.pem", conf / "web.key", cn="web.example.test", days=90,
             sans="DNS:web.example.test")
    web = nginx_server(conf / "web.pem", conf / "web.key")
    ports = f"{imap.ports['imap']},{imap.ports['imaps']}"
    capsys.readouterr()
    assert main(["scan", "127.0.0.1", "--ports", ports, "--starttls", "auto"]) == 0
    said = capsys.readouterr().out
    # By IP without SNI: no name to check, said once for the scan (item 10).
    assert said.count("names were not checked") == 1
    assert "2 endpoint(s) reached by IP address without SNI" in said
    listed = _json(capsys, ["inventory", "list", "--json"])
    assert isinstance(listed, list)
    dovecot_uris = {r["location"] for r in listed}
    assert dovecot_uris == {f"tls://127.0.0.1:{imap.ports['imap']}?starttls=imap",
                            f"tls://127.0.0.1:{imap.ports['imaps']}"}

    # The same host, another port.
    assert main(["scan", "127.0.0.1", "--ports", str(web.port)]) == 0
    changes = _json(capsys, ["inventory", "changes", "--json"])
    assert isinstance(changes, list)
    assert not [c for c in changes if c["change"] == "gone"]
    listed = _json(capsys, ["inventory", "list", "--json"])
    assert isinstance(listed, list)
    assert dovecot_uris <= {r["location"] for r in listed}
    findings = _findings(capsys)
    assert all(f["location"] for f in findings)  # no "location": null
    assert {str(f["location"]) for f in findings if f["rule"] == "self-signed"} == \
        dovecot_uris | {f"tls://127.0.0.1:{web.port}"}
    assert not [f for f in findings if f["rule"] == "hostname-mismatch"]

    # Dovecot stopped: a scan of its ports finds them closed, and now they are gone.
    imap.stop()
    assert main(["scan", "127.0.0.1", "--ports", ports]) == 0
    gone = {c["location"] for c in _json(capsys, ["inventory", "changes", "--json"])
            if c["change"] == "gone"}
    assert gone == dovecot_uris
