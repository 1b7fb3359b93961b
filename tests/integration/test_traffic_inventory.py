"""`certwarden traffic` writes its sightings into the inventory and consults it: a self-signed
certificate already inventoried (e.g. found by `discover files`) is not "unknown"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from certwarden.cli import main
from certwarden.store.inventory import Inventory
from tests.conftest import require_corpus


def _rules(text: str) -> set[str]:
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {str(r["rule"]) for r in rows if r.get("type") == "alert"}


def test_capture_sightings_land_in_the_inventory(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pcap = require_corpus("zeek", "pcaps", "tls", "irc-starttls.pcap")
    db = f"sqlite:///{tmp_path / 'inv.db'}"
    assert main(["--db", db, "traffic", "--alerts", str(pcap)]) == 0
    # A self-signed server certificate nobody registered is flagged.
    assert {"self-signed-server", "unknown-self-signed"} <= _rules(capsys.readouterr().out)

    inv = Inventory.open(db)
    try:
        seen = [s for s in inv.sightings() if s.location.uri.startswith("pcap://")]
        [scan] = [s for s in inv.scans() if s.kind == "traffic"]
    finally:
        inv.close()
    assert seen, "the capture's sessions became pcap:// sightings"
    assert any(s.certificate.subject.startswith("CN=irc.joulunet.org") for s in seen)
    assert scan.sightings == len(seen) == 1

    # The second time round the certificate is in the inventory: no longer unknown.
    assert main(["--db", db, "traffic", "--alerts", str(pcap)]) == 0
    again = _rules(capsys.readouterr().out)
    assert "self-signed-server" in again
    assert "unknown-self-signed" not in again
