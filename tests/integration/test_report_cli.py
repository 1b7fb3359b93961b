"""``certwarden report`` and ``forecast`` through ``main(argv)`` over a real inventory."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest

from certwarden.cli import main
from certwarden.cli.demo_forge import forge
from certwarden.records import KeyFile, Location, Sighting
from certwarden.store import inventory

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def db(db_urls: list[str]) -> str:
    url = db_urls[0]
    root = forge(subject="CN=Corp Root", sans=(), ca=True, not_before=NOW - 10 * DAY, days=3650)
    inter = forge(subject="CN=Corp Issuing", sans=(), ca=True, issuer=root,
                  not_before=NOW - 10 * DAY, days=1000)
    good = forge(subject="CN=www.corp.test", sans=("www.corp.test",), issuer=inter,
                 not_before=NOW - DAY, days=60)
    selfs = forge(subject="CN=wiki.corp.test", sans=("wiki.corp.test",), not_before=NOW - DAY,
                  days=400)
    files = forge(subject="CN=files.corp.test", sans=("files.corp.test",), issuer=inter,
                  not_before=NOW - DAY, days=60)
    inv = inventory.Inventory.open(url)
    try:
        scan = inv.start_scan("test", ["127.0.0.1"])
        inv.add_sightings(scan, [
            Sighting(certificate=good.certificate, location=Location.tls(
                "127.0.0.1", 8443, sni="www.corp.test"), seen_at=NOW,
                chain=(inter.certificate,)),
            Sighting(certificate=selfs.certificate, location=Location.tls(
                "127.0.0.1", 9443, sni="wiki.corp.test"), seen_at=NOW),
            Sighting(certificate=files.certificate, location=Location.file("/srv/f.pem"),
                     seen_at=NOW, key=KeyFile(path="/srv/f.key", encrypted=False, mode=0o640)),
        ])
        inv.finish_scan(scan)
    finally:
        inv.close()
    return url


def test_report_json_validates_and_names_the_problems(db: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["--db", db, "report", "--format", "json", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    schema = json.loads((ROOT / "docs/schema/report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    rules = {(f["location"], f["rule"]) for f in data["findings"]}
    assert ("tls://127.0.0.1:9443?sni=wiki.corp.test", "self-signed") in rules
    assert ("tls://127.0.0.1:9443?sni=wiki.corp.test", "validity-too-long") in rules
    assert ("file:///srv/f.pem", "private-key-exposed") in rules
    # The default policy trusts the system store, not Corp Root. Leaf + intermediate without
    # the root is a correctly configured server (issue 11 item 4): the root is untrusted,
    # nothing is missing from what was presented.
    www = {r for loc, r in rules if loc.startswith("tls://127.0.0.1:8443")}
    assert "untrusted-chain" in www
    assert "incomplete-chain" not in www
    msg = next(f["message"] for f in data["findings"] if f["rule"] == "untrusted-chain")
    assert "CN=Corp Root" in msg  # names the root that would be needed
    assert data["summary"]["certificates"] == 3  # the issuer is judged through its leaf


def test_fail_on_is_a_ci_gate(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", db, "report", "--fail-on", "high"]) == 1
    assert main(["--db", db, "report", "--fail-on", "critical"]) == 0
    table = capsys.readouterr().out
    assert "self-signed" in table


def test_policy_applies_and_bad_policy_is_one_line(db: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "p.yaml"
    good.write_text("rules:\n  self-signed: false\n  shadow-certificate: false\n"
                    "  validity-too-long: false\n  private-key-exposed: false\n"
                    "  incomplete-chain: false\n  untrusted-chain: false\n")
    assert main(["--db", db, "report", "--policy", str(good), "--fail-on", "high"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("thresholds:\n  expiring_soon_days: soon\n")
    capsys.readouterr()
    assert main(["--db", db, "report", "--policy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"policy {bad}:2:" in err


@pytest.mark.parametrize("fmt", ["sarif", "csv", "html", "table"])
def test_every_format_writes(db: str, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"r.{fmt}"
    assert main(["--db", db, "report", "--format", fmt, "--out", str(out)]) == 0
    assert out.stat().st_size > 200


def test_forecast(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", db, "forecast", "--years", "2026..2029", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["year"] for r in rows] == [2026, 2027, 2028, 2029]
    assert rows[0]["certificates"] == 3
    assert rows[0]["violating"] == 1  # the 400-day self-signed one
    assert main(["--db", db, "forecast", "--years", "soon"]) == 2


def test_owners_recorded_in_the_inventory_reach_the_report(
        db: str, capsys: pytest.CaptureFixture[str]) -> None:
    wiki = "tls://127.0.0.1:9443?sni=wiki.corp.test"

    def findings() -> dict[str, list[dict[str, str]]]:
        assert main(["--db", db, "report", "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        out: dict[str, list[dict[str, str]]] = {}
        for f in data["findings"]:
            out.setdefault(f["location"], []).append(f)
        return out

    before = findings()
    assert "shadow-certificate" in {f["rule"] for f in before[wiki]}
    assert main(["--db", db, "inventory", "owner", "tls://127.0.0.1:9443*", "wiki-team",
                 "--contact", "wiki@corp.test"]) == 0
    assert "wiki-team now owns 1 location(s)" in capsys.readouterr().out
    after = findings()
    # Owned now: no longer a shadow certificate, and every finding names its owner.
    assert "shadow-certificate" not in {f["rule"] for f in after[wiki]}
    assert {f["owner"] for f in after[wiki]} == {"wiki-team"}
    assert main(["--db", db, "inventory", "owner", "tls://nowhere*", "x"]) == 2

