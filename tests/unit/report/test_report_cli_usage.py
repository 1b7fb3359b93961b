"""``certwarden report`` / ``forecast`` usage errors: one line, exit 2, before any database."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from certwarden.assess import RULE_IDS, parse_policy
from certwarden.cli import main


def test_show_policy_prints_the_default_which_parses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--show-policy"]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text)["thresholds"]["expiring_soon_days"] == 30
    assert parse_policy(text, source="shown", known_rules=RULE_IDS).trust == "system"


@pytest.mark.parametrize(("argv", "needle"), [
    (["report", "--format", "pdf"], "Invalid value for '--format'"),
    (["report", "--fail-on", "severe"], "Invalid value for '--fail-on'"),
    (["report", "--years", "2030..2026"], "years"),
    (["forecast", "--years", "soon"], "years must be YYYY"),
])
def test_bad_usage_is_one_line(argv: list[str], needle: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_policy_is_refused_with_its_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text("version: 1\nseverity:\n  no-such-rule: high\n")
    assert main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "report", "--policy", str(p)]) == 2
    err = capsys.readouterr().err
    assert err == f"certwarden: error: policy {p}:3: unknown rule 'no-such-rule' in severity\n"
