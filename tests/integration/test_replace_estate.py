"""Issue 11 on files: what `replace` selects, and where its backups go.

Certificates are made the way users make them: `openssl req -x509` (real openssl), which marks
the self-signed certificate CA:TRUE. Real CA, real file sweep, real inventory (SQLite).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from certwarden.cli import main
from certwarden.x509 import create as mk
from certwarden.x509 import read_source
from tests.realservers import req_x509


@pytest.fixture
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "estate-test-passphrase")
    monkeypatch.setenv("CERTWARDEN_CA_DIR", str(tmp_path / "ca"))
    return tmp_path


def _plan(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    assert main(["replace", "--dry-run", "--json"]) == 0
    return {Path(r["location"].removeprefix("file://")).name: r
            for r in json.loads(capsys.readouterr().out)}


def test_req_x509_ca_true_leaf_is_selected_but_a_ca_only_seen_as_issuer_is_not(
        estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc = estate / "etc"
    etc.mkdir()
    req_x509(etc / "web.pem", etc / "web.key", cn="web.example.test", days=365)
    assert read_source(str(etc / "web.pem")).certificates[0].is_ca  # what openssl makes
    # A dev CA with its key beside it that signed a leaf we also have: a CA in use.
    dev = mk.dev_ca("Dev CA")
    (etc / "devca.pem").write_text(dev.certificate.pem())
    mk.write_private(etc / "devca.key", dev.key_pem())
    (etc / "signed.pem").write_text(mk.leaf(dev, ["signed.example.test"]).certificate.pem())
    # The self-signed certificate copied into a trust bundle (no key): trust, not a target.
    bundle = estate / "usr" / "local" / "share" / "ca-certificates"
    bundle.mkdir(parents=True)
    (bundle / "web.crt").write_bytes((etc / "web.pem").read_bytes())
    assert main(["ca", "init", "--name", "Estate CA"]) == 0
    assert main(["discover", "files", str(etc), str(bundle)]) == 0
    capsys.readouterr()

    plan = _plan(capsys)
    assert set(plan) == {"web.pem"}
    assert plan["web.pem"]["action"] == "in-place"


def test_backups_are_kept_apart_with_owner_and_mode_and_never_come_back(
        estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc = estate / "etc"
    etc.mkdir()
    req_x509(etc / "mail.pem", etc / "mail.key", cn="mail.example.test", days=825,
             sans="DNS:mail.example.test")
    os.chmod(etc / "mail.pem", 0o640)
    owner = 1 if os.geteuid() == 0 else os.getuid()  # uid 1 (daemon) when we may chown
    if os.geteuid() == 0:
        os.chown(etc / "mail.pem", owner, owner)
        os.chown(etc / "mail.key", owner, owner)
    old = (etc / "mail.pem").read_bytes()
    # A backup the previous version of certwarden left beside the file: not live either.
    (etc / "mail.pem.certwarden-20260101T000000Z.bak").write_bytes(old)
    assert main(["ca", "init", "--name", "Estate CA"]) == 0
    assert main(["discover", "files", str(etc)]) == 0
    capsys.readouterr()
    assert set(_plan(capsys)) == {"mail.pem"}

    assert main(["replace", "--apply", "--json", "--out", str(estate / "out")]) == 0
    [done] = json.loads(capsys.readouterr().out)
    assert done["status"] == "replaced"
    backups = etc / ".certwarden-backup"
    [cert_backup] = backups.glob("mail.pem.*")
    [key_backup] = backups.glob("mail.key.*")
    assert cert_backup.read_bytes() == old
    assert (cert_backup.stat().st_mode & 0o777, key_backup.stat().st_mode & 0o777) == (
        0o640, 0o600)
    assert cert_backup.stat().st_uid == owner
    assert key_backup.stat().st_uid == owner

    # The next sweep of the same tree sees only the live files: no backup is a finding or a
    # replacement target.
    assert main(["discover", "files", str(etc)]) == 0
    capsys.readouterr()
    assert main(["inventory", "list", "--json"]) == 0
    listed = [r["location"] for r in json.loads(capsys.readouterr().out)]
    assert not [u for u in listed if ".certwarden-backup" in u or u.endswith(".bak")]
    assert _plan(capsys) == {}
    assert main(["report", "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert not [f for f in findings if ".certwarden-backup" in (f["location"] or "")
                or (f["location"] or "").endswith(".bak")]
    # Right after the replacement nothing at or above medium is left: the new 30-day leaf
    # is not "expiring soon" and its 0600 key is not "exposed" (issue 11, items 7 and 11).
    mine = [f for f in findings if f["location"].endswith("/mail.pem")]
    assert {f["rule"] for f in mine} <= {"private-key-unencrypted", "untrusted-chain"}, mine
    assert "private-key-unencrypted" in {f["rule"] for f in mine}
    assert main(["report", "--fail-on", "medium"]) == 0


def test_backup_path_never_overwrites_a_backup(tmp_path: Path) -> None:
    from certwarden.lifecycle.deploy import backup_path

    live = tmp_path / "web.pem"
    first = backup_path(live, "20261202T080000Z")
    first.write_text("first")
    second = backup_path(live, "20261202T080000Z")
    assert first.parent == second.parent == tmp_path / ".certwarden-backup"
    assert (first.name, second.name) == ("web.pem.20261202T080000Z",
                                         "web.pem.20261202T080000Z-2")
    assert first.parent.stat().st_mode & 0o777 == 0o700
