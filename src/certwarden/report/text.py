"""Plain outputs: the terminal table, CSV, and JSON text."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

CSV_COLUMNS = ("severity", "rule", "location", "sha256", "owner", "subject", "message",
               "evidence", "remediation", "citation")


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def to_csv(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for f in data["findings"]:
        ev = "; ".join(f"{k}={v}" for k, v in f["evidence"].items())
        w.writerow([_cell(x) for x in (f["severity"], f["rule"], f["location"] or "",
                                       f["sha256"] or "", f["owner"] or "", f["subject"] or "",
                                       f["message"], ev, f["remediation"], f["citation"])])
    return buf.getvalue()


def _cell(text: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet (CSV injection): quote it.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_table(data: dict[str, Any], *, width: int = 160) -> str:
    s = data["summary"]
    sev = ", ".join(f"{v} {k}" for k, v in s["by_severity"].items() if v)
    lines = [f"{s['certificates']} certificate(s) at {s['sightings']} location(s): "
             f"{s['findings']} finding(s)" + (f" ({sev})" if sev else "")
             + (f", {s['suppressed']} suppressed by policy exceptions" if s["suppressed"]
                else "")]
    if not data["findings"]:
        return lines[0] + "\n"
    rows = [("SEVERITY", "RULE", "LOCATION", "MESSAGE")]
    for f in data["findings"]:
        rows.append((f["severity"].upper(), f["rule"], f["location"] or "-", f["message"]))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = min(max(len(r[2]) for r in rows), 48)
    rest = max(width - w0 - w1 - w2 - 6, 30)
    lines.append("")
    for r in rows:
        loc = r[2] if len(r[2]) <= w2 else r[2][: w2 - 1] + "…"
        msg = r[3] if len(r[3]) <= rest else r[3][: rest - 1] + "…"
        lines.append(f"{r[0]:<{w0}}  {r[1]:<{w1}}  {loc:<{w2}}  {msg}".rstrip())
    return "\n".join(lines) + "\n"


def forecast_table(rows: list[dict[str, int]]) -> str:
    head = ("YEAR", "MAX DAYS", "CERTIFICATES", "VIOLATING", "RENEWALS/YR NOW",
            "RENEWALS/YR NEEDED")
    body = [tuple(str(r[k]) for k in ("year", "max_validity_days", "certificates", "violating",
                                      "renewals_now", "renewals_needed")) for r in rows]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))
                     for r in (head, *body)) + "\n"
