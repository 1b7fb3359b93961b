"""Report outputs: table, JSON, CSV, SARIF 2.1.0 and a self-contained HTML page."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum

from certwarden.assess import Assessment
from certwarden.assess.forecast import ForecastYear
from certwarden.report.html import to_html
from certwarden.report.model import build
from certwarden.report.sarif import to_sarif
from certwarden.report.text import to_csv, to_json, to_table


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    SARIF = "sarif"
    HTML = "html"


def render(assessment: Assessment, fmt: ReportFormat,
           forecast: Sequence[ForecastYear] = ()) -> str:
    data = build(assessment, forecast)
    if fmt is ReportFormat.TABLE:
        return to_table(data)
    if fmt is ReportFormat.JSON:
        return to_json(data)
    if fmt is ReportFormat.CSV:
        return to_csv(data)
    if fmt is ReportFormat.SARIF:
        return json.dumps(to_sarif(data), indent=2) + "\n"
    return to_html(data)


__all__ = ["ReportFormat", "build", "render", "to_csv", "to_html", "to_json", "to_sarif",
           "to_table"]
