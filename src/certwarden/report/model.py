"""The report's data: one dict built from an assessment, the shape of the JSON output.

Every other format (table, CSV, SARIF, HTML) reads this same structure, so they never
disagree. The shape is described by ``docs/schema/report.schema.json``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from certwarden import __version__
from certwarden.assess import Assessment
from certwarden.assess.forecast import ForecastYear
from certwarden.x509 import Certificate, Kind

SCHEMA_VERSION = 1
NO_OWNER = "(no owner)"


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issuance(cert: Certificate) -> str:
    """self-signed / self-issued / ca-issued: the share chart's three slices."""
    if cert.kind == Kind.SELF_SIGNED:
        return "self-signed"
    if cert.kind == Kind.SELF_ISSUED:
        return "self-issued"
    return "ca-issued"


def key_label(cert: Certificate) -> str:
    k = cert.key
    return f"{k.type.upper()} {k.curve or k.bits}" if k.type != "unknown" else "unknown"


def build(assessment: Assessment, forecast: Sequence[ForecastYear] = ()) -> dict[str, Any]:
    a = assessment
    locations: dict[str, list[str]] = defaultdict(list)
    for s in a.sightings:
        if s.location.uri not in locations[s.certificate.sha256]:
            locations[s.certificate.sha256].append(s.location.uri)
    worst: dict[str, str] = {}
    owners_of: dict[str, str] = {}
    for f in a.findings:
        if f.sha256 is None:
            continue
        if f.sha256 not in worst or f.severity.rank > _rank(worst[f.sha256]):
            worst[f.sha256] = str(f.severity)
        if f.owner:
            owners_of.setdefault(f.sha256, f.owner)
    for s in a.sightings:
        owner = a.policy.owner_of(s.location.uri)
        if owner:
            owners_of.setdefault(s.certificate.sha256, owner.team)
    certs = []
    for c in sorted(a.certificates, key=lambda c: (c.not_after, c.sha256)):
        certs.append({
            "sha256": c.sha256, "subject": c.subject, "issuer": c.issuer,
            "issuance": issuance(c), "is_ca": c.is_ca, "key": key_label(c),
            "not_before": iso(c.not_before), "not_after": iso(c.not_after),
            "names": list(c.names), "locations": locations.get(c.sha256, []),
            "owner": owners_of.get(c.sha256), "worst_severity": worst.get(c.sha256)})
    by_owner = Counter(f.owner or NO_OWNER for f in a.findings)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "certwarden", "version": __version__},
        "generated_at": iso(a.generated_at),
        "policy": a.policy.source,
        "trust_store": a.trust_store,
        "summary": {
            "certificates": len(a.certificates),
            "sightings": len(a.sightings),
            "findings": len(a.findings),
            "suppressed": a.suppressed,
            "by_severity": a.by_severity(),
            "by_rule": a.by_rule(),
            "by_owner": dict(sorted(by_owner.items(), key=lambda kv: (-kv[1], kv[0]))),
            "issuance": dict(Counter(issuance(c) for c in a.certificates)),
            "key_types": dict(Counter(key_label(c) for c in a.certificates).most_common()),
        },
        "findings": [f.as_dict() for f in a.findings],
        "certificates": certs,
        "forecast": [y.as_dict() for y in forecast],
        "errors": list(a.errors),
    }


_RANKS = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def _rank(sev: str) -> int:
    return _RANKS[sev]
