"""The self-contained HTML report: one file, inline CSS and SVG, no script, no external asset."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from certwarden.report import charts

# Expiry buckets: (label, upper bound in days from the report time, colour).
_BUCKETS = (("expired", 0, "#7f1d1d"), ("≤ 30 d", 30, "#dc2626"), ("31-90 d", 90, "#f59e0b"),
            ("91-180 d", 180, "#eab308"), ("181-365 d", 365, "#84cc16"),
            ("1-2 y", 730, "#16a34a"), ("2-5 y", 1826, "#0891b2"),
            ("> 5 y", 10**9, "#7c3aed"))
_ISSUANCE_COLORS = {"self-signed": "#dc2626", "self-issued": "#f59e0b", "ca-issued": "#16a34a"}

_CSS = """
body{font-family:system-ui,-apple-system,sans-serif;margin:0;background:#f8fafc;color:#111827}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#cbd5e1;font-size:13px}
main{padding:18px 28px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:24px} .card span{color:#6b7280;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px;
  margin-bottom:16px;overflow-x:auto}
section h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #f1f5f9;vertical-align:top}
th{background:#f1f5f9}
.sev{font-weight:600;border-radius:4px;padding:1px 6px;color:#fff;font-size:11px}
code{font-size:11px;word-break:break-all}
"""


def _days_left(not_after: str, now: dt.datetime) -> float:
    when = dt.datetime.strptime(not_after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return (when - now).total_seconds() / 86400


def expiry_buckets(data: dict[str, Any]) -> list[tuple[str, int, str]]:
    now = dt.datetime.strptime(data["generated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    counts = [0] * len(_BUCKETS)
    for c in data["certificates"]:
        left = _days_left(c["not_after"], now)
        for i, (_, upper, _) in enumerate(_BUCKETS):
            if left <= upper:
                counts[i] += 1
                break
    return [(label, counts[i], color) for i, (label, _, color) in enumerate(_BUCKETS)]


def to_html(data: dict[str, Any]) -> str:
    s = data["summary"]
    sev_items = [(k, v) for k, v in s["by_severity"].items()]
    rule_items = list(s["by_rule"].items())
    owner_items = list(s["by_owner"].items())
    issuance = [(k, s["issuance"].get(k, 0), c) for k, c in _ISSUANCE_COLORS.items()]
    keys = list(s["key_types"].items())
    fc = data["forecast"]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>certwarden report</title><style>", _CSS, "</style></head><body>",
        "<header><h1>certwarden report</h1>",
        f"<p>generated {escape(data['generated_at'])} · policy {escape(data['policy'])} · "
        f"trust store {escape(data['trust_store'])} · certwarden "
        f"{escape(data['tool']['version'])}</p></header><main>",
        '<div class="cards" id="summary">',
        _card("certificates", s["certificates"]), _card("locations", s["sightings"]),
        _card("findings", s["findings"]),
        *(_card(k, v) for k, v in s["by_severity"].items()),
        _card("suppressed", s["suppressed"]), "</div>",
        '<section id="expiry"><h2>Expiry timeline (certificates by time left)</h2>',
        charts.columns("expiry", "Certificates by time to expiry", expiry_buckets(data)),
        "</section>",
        '<div class="grid">',
        '<section id="severity"><h2>Findings by severity</h2>',
        charts.hbars("severity", "Findings by severity", sev_items, charts.SEVERITY_COLORS),
        "</section>",
        '<section id="rules"><h2>Findings by rule</h2>',
        charts.hbars("rules", "Findings by rule", rule_items), "</section>",
        '<section id="issuance"><h2>Self-signed vs CA-issued</h2>',
        charts.donut("issuance", "Self-signed vs CA-issued certificates", issuance),
        "</section>",
        '<section id="keys"><h2>Key types</h2>',
        charts.hbars("keys", "Certificates by key type", keys), "</section>",
        '<section id="owners"><h2>Findings by owner</h2>',
        charts.hbars("owners", "Findings by owner", owner_items), "</section>",
        "</div>",
    ]
    if fc:
        groups = [(str(y["year"]), [("renewals/yr now", y["renewals_now"]),
                                    ("renewals/yr at the ceiling", y["renewals_needed"]),
                                    ("certificates over the ceiling", y["violating"])])
                  for y in fc]
        parts += ['<section id="forecast"><h2>Forecast: the CA/B validity ceiling by year'
                  "</h2>", charts.grouped("forecast", "Renewals per year and violations", groups),
                  _forecast_table(fc), "</section>"]
    parts += [_findings_table(data["findings"]), _cert_table(data["certificates"])]
    if data["errors"]:
        parts.append('<section id="errors"><h2>Not assessed</h2><ul>'
                     + "".join(f"<li>{escape(e)}</li>" for e in data["errors"]) + "</ul></section>")
    parts.append("</main></body></html>\n")
    return "".join(parts)


def _card(label: str, value: int) -> str:
    return f'<div class="card"><b>{value}</b><span>{escape(label)}</span></div>'


def _forecast_table(rows: list[dict[str, int]]) -> str:
    head = ("year", "max validity (days)", "certificates", "over the ceiling",
            "renewals/yr now", "renewals/yr needed")
    keys = ("year", "max_validity_days", "certificates", "violating", "renewals_now",
            "renewals_needed")
    body = "".join("<tr>" + "".join(f"<td>{r[k]}</td>" for k in keys) + "</tr>" for r in rows)
    return ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head)
            + f"</tr></thead><tbody>{body}</tbody></table>")


def _findings_table(findings: list[dict[str, Any]]) -> str:
    rows = []
    for f in findings:
        color = charts.SEVERITY_COLORS[f["severity"]]
        rows.append(
            f'<tr class="finding" data-rule="{escape(f["rule"])}" '
            f'data-severity="{f["severity"]}"><td><span class="sev" style="background:{color}">'
            f'{escape(f["severity"])}</span></td><td>{escape(f["rule"])}</td>'
            f'<td><code>{escape(f["location"] or "-")}</code></td>'
            f'<td>{escape(f["message"])}</td><td>{escape(f["owner"] or "")}</td>'
            f'<td>{escape(f["remediation"])}</td></tr>')
    return ('<section id="findings"><h2>Findings</h2><table><thead><tr><th>severity</th>'
            "<th>rule</th><th>location</th><th>message</th><th>owner</th><th>fix</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></section>")


def _cert_table(certs: list[dict[str, Any]]) -> str:
    rows = []
    for c in certs:
        rows.append(
            f'<tr class="certificate"><td>{escape(c["subject"] or "(empty)")}</td>'
            f'<td>{escape(c["issuance"])}</td><td>{escape(c["key"])}</td>'
            f'<td>{escape(c["not_after"][:10])}</td><td>{escape(c["worst_severity"] or "")}</td>'
            f'<td>{"<br>".join(f"<code>{escape(u)}</code>" for u in c["locations"])}</td>'
            f'<td><code>{c["sha256"][:16]}…</code></td></tr>')
    return ('<section id="certificates"><h2>Certificates</h2><table><thead><tr>'
            "<th>subject</th><th>issuance</th><th>key</th><th>not after</th><th>worst</th>"
            f"<th>locations</th><th>sha256</th></tr></thead><tbody>{''.join(rows)}</tbody>"
            "</table></section>")
