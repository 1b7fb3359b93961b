"""SARIF 2.1.0 output, so CI systems and code-scanning dashboards ingest findings.

Validated in tests against the OASIS schema (tests/data/sarif-schema-2.1.0.json).
"""

from __future__ import annotations

import hashlib
from typing import Any

from certwarden.assess import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note",
          "info": "note"}
# GitHub code scanning reads a CVSS-like 0-10 score from properties.security-severity.
_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.5"}
INFO_URI = "https://github.com/certwarden/certwarden/blob/main/docs/assessment.md"


def to_sarif(data: dict[str, Any]) -> dict[str, Any]:
    index = {r.id: i for i, r in enumerate(RULES)}
    rules = [{
        "id": r.id, "name": r.title.title().replace(" ", "").replace("-", ""),
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.rationale},
        "help": {"text": f"{r.remediation} ({r.citation})",
                 "markdown": f"**Why:** {r.rationale}\n\n**Fix:** {r.remediation}\n\n"
                             f"**Reference:** {r.citation}"},
        "helpUri": f"{INFO_URI}#{r.id}",
        "defaultConfiguration": {"level": _LEVEL[str(r.severity)]},
        "properties": {"tags": ["security", "x509", r.scope.value],
                       "security-severity": _SCORE[str(r.severity)],
                       "precision": "very-high"},
    } for r in RULES]
    results = []
    for f in data["findings"]:
        result: dict[str, Any] = {
            "ruleId": f["rule"], "ruleIndex": index[f["rule"]], "level": _LEVEL[f["severity"]],
            "message": {"text": f["message"]},
            "partialFingerprints": {"certwarden/v1": _fingerprint(f)},
            "properties": {"severity": f["severity"], "sha256": f["sha256"],
                           "owner": f["owner"], "subject": f["subject"],
                           "evidence": f["evidence"], "remediation": f["remediation"],
                           "security-severity": _SCORE[f["severity"]]},
        }
        if f["location"]:
            result["locations"] = [{
                "physicalLocation": {"artifactLocation": {"uri": f["location"]}},
                "logicalLocations": [{"name": f["sha256"] or f["location"],
                                      "kind": "certificate"}],
            }]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "certwarden", "version": data["tool"]["version"],
                                "informationUri": INFO_URI, "rules": rules}},
            "invocations": [{"executionSuccessful": not data["errors"],
                             "endTimeUtc": data["generated_at"],
                             "toolExecutionNotifications": [
                                 {"level": "warning", "message": {"text": e}}
                                 for e in data["errors"]]}],
            "results": results,
            "properties": {"policy": data["policy"], "trust_store": data["trust_store"],
                           "summary": data["summary"]},
        }],
    }


def _fingerprint(f: dict[str, Any]) -> str:
    key = f"{f['rule']}|{f['sha256']}|{f['location']}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]
