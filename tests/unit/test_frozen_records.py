"""Frozen records hold no dict: the mappings inside them are read-only copies (issue 10)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from certwarden.assess import Finding, Hit, Policy, Severity
from certwarden.records import Location, Sighting
from certwarden.traffic.alerts import Alert, Blocklist
from certwarden.x509 import read_source
from tests.conftest import ROOT

SAMPLE = ROOT / "src" / "certwarden" / "samples" / "self-signed.pem"


def _sighting(extra: dict[str, str]) -> Sighting:
    cert = read_source(str(SAMPLE)).certificates[0]
    return Sighting(certificate=cert, location=Location.tls("127.0.0.1", 443),
                    seen_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), extra=extra)


def _finding(evidence: dict[str, str]) -> Finding:
    return Finding(rule="r", severity=Severity.LOW, sha256=None, location=None, message="m",
                   evidence=evidence)


def _alert(evidence: dict[str, str]) -> Alert:
    return Alert(rule="r", severity=Severity.LOW, message="m", flow="f", capture="c",
                 certificate=None, evidence=evidence)


# Each record with a mapping field: how to build it from a dict, and how to read that field.
CASES: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[Any], Mapping[str, Any]]]] = {
    "Sighting.extra": (_sighting, lambda r: r.extra),
    "Finding.evidence": (_finding, lambda r: r.evidence),
    "Hit.evidence": (lambda d: Hit(message="m", evidence=d), lambda r: r.evidence),
    "Alert.evidence": (_alert, lambda r: r.evidence),
    "Blocklist.sha1": (lambda d: Blocklist(sha1=d), lambda r: r.sha1),
    "Blocklist.fingerprints": (lambda d: Blocklist(fingerprints=d), lambda r: r.fingerprints),
    "Policy.severity": (lambda d: Policy(severity={k: Severity(v) for k, v in d.items()}),
                        lambda r: r.severity),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mapping_fields_are_read_only_copies(case: str) -> None:
    build, read = CASES[case]
    given = {"a": "low"}
    record = build(given)
    held = read(record)
    assert held == {"a": "low"}
    with pytest.raises(TypeError):
        held["b"] = "high"  # type: ignore[index]
    given["b"] = "high"  # the caller's dict is the caller's: the record kept its own copy
    assert dict(read(record)) == {"a": "low"}


def test_json_output_is_what_the_dicts_gave() -> None:
    f = _finding({"not_after": "2027-02-25", "threshold_days": "30"})
    assert json.dumps(f.as_dict()) == json.dumps(
        {"rule": "r", "severity": "low", "sha256": None, "location": None, "message": "m",
         "evidence": {"not_after": "2027-02-25", "threshold_days": "30"}, "remediation": "",
         "citation": "", "owner": None, "subject": None})
    a = _alert({"server": "10.0.0.1:443"})
    assert json.dumps(a.as_dict()["evidence"]) == '{"server": "10.0.0.1:443"}'


def test_equal_records_stay_equal() -> None:
    assert _sighting({"ja3": "x"}) == _sighting({"ja3": "x"})
    assert _sighting({"ja3": "x"}) != _sighting({"ja3": "y"})
    assert _finding({}) == _finding({})
