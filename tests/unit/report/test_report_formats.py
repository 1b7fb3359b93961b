"""Every output format from one assessment: JSON against our schema, SARIF against OASIS'."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest

from certwarden.assess import RULE_IDS, Policy, Waiver, assess
from certwarden.assess.forecast import forecast
from certwarden.assess.policy import Owner
from certwarden.cli.demo_forge import forge
from certwarden.records import KeyFile, Location, Sighting
from certwarden.report import ReportFormat, build, render, to_csv, to_html, to_sarif, to_table
from certwarden.x509.verify import TrustStore

ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def assessment():  # type: ignore[no-untyped-def]
    root = forge(subject="CN=Root", sans=(), ca=True, not_before=NOW - 100 * DAY, days=3650)
    ok = forge(subject="CN=ok.test", sans=("ok.test",), issuer=root, not_before=NOW - DAY)
    selfs = forge(subject="CN=s.test,O=Internet Widgits Pty Ltd", sans=("s.test",),
                  key="rsa1024", hash_name="sha1", not_before=NOW - 500 * DAY, days=400)
    old = forge(subject="CN==cmd|' /C calc'!A0", sans=("x.test",), issuer=root,
                not_before=NOW - 10 * DAY, days=9000)
    sightings = [
        Sighting(certificate=ok.certificate, location=Location.tls("127.0.0.1", 443,
                 sni="ok.test"), seen_at=NOW, chain=(root.certificate,)),
        Sighting(certificate=selfs.certificate, location=Location.tls("127.0.0.1", 8443),
                 seen_at=NOW),
        Sighting(certificate=old.certificate, location=Location.file("/srv/x.pem"), seen_at=NOW,
                 key=KeyFile(path="/srv/x.key", encrypted=False, mode=0o644)),
    ]
    policy = Policy(source="test.yaml",
                    owners=(Owner(match="file://*", team="storage", contact="s@x.test"),),
                    exceptions=(Waiver(reason="legacy", owner="ops", expires=NOW.date() - DAY,
                                       location="tls://127.0.0.1:8443", line=12),))
    result = assess(sightings, policy=policy, trust=TrustStore.of([root.certificate]), now=NOW)
    return result, forecast(result.certificates)


def test_json_validates_against_the_committed_schema(assessment) -> None:  # type: ignore[no-untyped-def]
    schema = json.loads((ROOT / "docs/schema/report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(render(*assessment[:1], ReportFormat.JSON, assessment[1]))
    jsonschema.Draft202012Validator(schema).validate(data)
    assert data["summary"]["findings"] == len(data["findings"]) > 0
    assert {f["rule"] for f in data["findings"]} >= {"self-signed", "weak-key", "expired",
                                                    "exception-expired", "private-key-exposed"}
    assert len(data["forecast"]) == 5


def test_schema_rule_list_is_the_registry() -> None:
    schema = json.loads((ROOT / "docs/schema/report.schema.json").read_text())
    assert set(schema["$defs"]["rule"]["enum"]) == RULE_IDS


def test_schema_rejects_a_broken_report(assessment) -> None:  # type: ignore[no-untyped-def]
    schema = json.loads((ROOT / "docs/schema/report.schema.json").read_text())
    data = build(assessment[0], assessment[1])
    data["findings"][0]["severity"] = "severe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(data)


def test_sarif_validates_against_the_oasis_schema(assessment) -> None:  # type: ignore[no-untyped-def]
    schema = json.loads((ROOT / "tests/data/sarif-schema-2.1.0.json").read_text())
    sarif = json.loads(render(assessment[0], ReportFormat.SARIF))
    jsonschema.Draft4Validator(schema).validate(sarif)
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == RULE_IDS
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
    data = build(assessment[0])
    assert len(run["results"]) == len(data["findings"])


def test_sarif_validator_catches_a_bad_log(assessment) -> None:  # type: ignore[no-untyped-def]
    schema = json.loads((ROOT / "tests/data/sarif-schema-2.1.0.json").read_text())
    sarif = to_sarif(build(assessment[0]))
    sarif["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(sarif)


def test_csv_one_row_per_finding_and_formula_cells_defused(assessment) -> None:  # type: ignore[no-untyped-def]
    data = build(assessment[0])
    rows = list(csv.DictReader(io.StringIO(to_csv(data))))
    assert len(rows) == len(data["findings"])
    subjects = [r["subject"] for r in rows if "cmd" in r["subject"]]
    assert subjects
    assert all(s.startswith("'") for s in subjects if s.lstrip("'").startswith("="))


def test_table_lists_every_finding(assessment) -> None:  # type: ignore[no-untyped-def]
    data = build(assessment[0])
    text = to_table(data)
    assert text.splitlines()[0].startswith("3 certificate(s) at 3 location(s)")
    assert len(text.splitlines()) == 3 + len(data["findings"])


def test_html_is_self_contained_well_formed_and_has_every_chart(assessment) -> None:  # type: ignore[no-untyped-def]
    page = to_html(build(assessment[0], assessment[1]))
    for bad in ("<script", "http://", "https://", "<link", "@import", "url("):
        # the only URLs allowed are SVG's XML namespace
        assert bad not in page.replace('xmlns="http://www.w3.org/2000/svg"', ""), bad
    body = page.split("<body>", 1)[1].split("</body>")[0]
    # html.escape only emits XML-safe entities, so the body parses as XML (once <br> closes)
    tree = ElementTree.fromstring(  # noqa: S314 - our own output, not untrusted input
        "<body>" + body.replace("<br>", "<br/>") + "</body>")
    ns = "{http://www.w3.org/2000/svg}"
    charts = {svg.get("data-chart"): svg for svg in tree.iter(f"{ns}svg")}
    assert set(charts) == {"expiry", "severity", "rules", "issuance", "keys", "owners",
                           "forecast"}
    data = build(assessment[0])
    drawn = {r.get("data-label"): int(r.get("data-value") or 0)
             for r in charts["severity"].iter(f"{ns}rect")}
    assert drawn == data["summary"]["by_severity"]
    slices = {p.get("data-label"): int(p.get("data-value") or 0)
              for p in charts["issuance"] if p.get("class") == "slice"}
    assert slices == data["summary"]["issuance"]
    expiry_total = sum(int(r.get("data-value") or 0) for r in charts["expiry"].iter(f"{ns}rect"))
    assert expiry_total == data["summary"]["certificates"]
    assert len(page.split('class="finding"')) - 1 == len(data["findings"])
