"""Policy YAML: the default parses, every field is checked, a bad policy names line and reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certwarden.assess import (
    DEFAULT_POLICY_YAML,
    RULE_IDS,
    PolicyError,
    Severity,
    default_policy,
    load_policy,
    parse_policy,
)
from certwarden.assess.forecast import forecast, parse_years
from certwarden.assess.schedule import exceeds, max_validity_days
from certwarden.cli.demo_forge import forge

GOOD = """\
version: 1
thresholds:
  expiring_soon_days: 14
  private_max_validity_days: 47
trust: certifi
rules:
  wildcard: false
severity:
  cn-not-in-san: info
owners:
  - match: "tls://*.pay.example:*"
    team: payments
    contact: pay@example.test
exceptions:
  - location: "file:///legacy/*"
    rules: [self-signed, weak-key]
    reason: appliance cannot be replaced before Q2
    owner: infra
    expires: 2027-06-30
"""


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_policy(text, source="p.yaml", known_rules=RULE_IDS)


def test_default_policy_is_documented_and_parses() -> None:
    p = default_policy()
    assert p.thresholds.expiring_soon_days == 30
    assert p.trust == "system"
    assert "expiring_soon_days" in DEFAULT_POLICY_YAML


def test_full_policy() -> None:
    p = parse(GOOD)
    assert p.thresholds.expiring_soon_days == 14
    assert p.thresholds.private_max_validity_days == 47
    assert not p.enabled("wildcard")
    assert p.severity_of("cn-not-in-san", Severity.LOW) is Severity.INFO
    assert p.owner_of("tls://api.pay.example:443") is not None
    assert p.owner_of("tls://api.example:443") is None
    w = p.exceptions[0]
    assert w.expires == dt.date(2027, 6, 30)
    assert w.line == 15
    today = dt.date(2026, 11, 27)
    assert p.waiver_for("weak-key", None, "file:///legacy/a.pem", today) is w
    assert p.waiver_for("expired", None, "file:///legacy/a.pem", today) is None
    assert p.waiver_for("weak-key", None, "file:///legacy/a.pem", dt.date(2027, 7, 1)) is None


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("thresholds:\n  expiring_soon_days: soon\n", 2, "must be a whole number"),
    ("thresholds:\n  expiring_soon_days: 0\n", 2, "at least 1"),
    ("thresholds:\n  bogus: 3\n", 2, "unknown key 'bogus'"),
    ("rules:\n  no-such-rule: false\n", 2, "unknown rule 'no-such-rule'"),
    ("rules:\n  wildcard: maybe\n", 2, "true or false"),
    ("severity:\n  wildcard: severe\n", 2, "unknown severity"),
    ("owners:\n  - team: x\n", 2, "needs 'match'"),
    ("exceptions:\n  - sha256: abc\n    reason: r\n    owner: o\n    expires: 2027-01-01\n", 2,
     "64 hex digits"),
    ("exceptions:\n  - location: x\n    reason: r\n    owner: o\n    expires: soon\n", 5,
     "must be a date"),
    ("exceptions:\n  - location: x\n    reason: r\n    expires: 2027-01-01\n", 2,
     "needs 'owner'"),
    ("owners: {a: b}\n", 1, "must be a list"),
    ("version: 2\n", 1, "version must be 1"),
    ("colour: blue\n", 1, "unknown key 'colour'"),
    ("thresholds: [1\n", 2, "not valid YAML"),
    ("- a\n- b\n", 1, "must be a mapping"),
    ("rules:\n  wildcard: false\n  wildcard: true\n", 3, "given twice"),
    ("rules:\n  wildcard: !!python/name:os.system\n", 2, "unreadable value"),
    ("exceptions:\n  - location: x\n    reason: r\n    owner: o\n    expires: 2027-13-45\n", 5,
     "unreadable value"),
    ("trust: !!binary AAAA\n", 1, "must be non-empty text"),
])
def test_malformed_policy_names_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse(text)
    assert err.value.line == line, str(err.value)
    assert reason in err.value.reason
    assert str(err.value).startswith(f"policy p.yaml:{line}: ")
    assert "\n" not in str(err.value)


def test_unreadable_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="No such file"):
        load_policy(str(tmp_path / "missing.yaml"), known_rules=RULE_IDS)
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(str(binary), known_rules=RULE_IDS)


def test_empty_policy_is_the_defaults() -> None:
    assert parse("").thresholds == default_policy().thresholds


@pytest.mark.parametrize(("issued", "days"), [
    (dt.date(2026, 3, 14), 398), (dt.date(2026, 3, 15), 200), (dt.date(2027, 3, 14), 200),
    (dt.date(2027, 3, 15), 100), (dt.date(2029, 3, 14), 100), (dt.date(2029, 3, 15), 47),
    (dt.date(2035, 1, 1), 47), (dt.date(2019, 1, 1), 398),
])
def test_cab_schedule_by_issue_date(issued: dt.date, days: int) -> None:
    assert max_validity_days(issued) == days


def test_validity_counts_inclusive_seconds() -> None:
    nb = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    # notAfter exactly 200 days minus one second later is a 200-day period (BR §1.6.1).
    assert not exceeds(nb, nb + dt.timedelta(days=200, seconds=-1), 200)
    assert exceeds(nb, nb + dt.timedelta(days=200), 200)


def test_forecast_counts_violations_and_renewals() -> None:
    start = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    year = forge(not_before=start, days=365).certificate
    short = forge(not_before=start, days=45).certificate
    ca = forge(subject="CN=CA", sans=(), ca=True, not_before=start, days=3650).certificate
    rows = forecast([year, short, ca], parse_years("2026..2030"))
    by_year = {r.year: r for r in rows}
    assert by_year[2026].max_validity_days == 200
    assert by_year[2026].certificates == 2  # the CA is not counted
    assert by_year[2026].violating == 1
    assert by_year[2029].max_validity_days == 47
    assert by_year[2027].certificates == 2  # each leaf is a service that is renewed
    assert by_year[2029].violating == 1  # 45 days fits even the 47-day ceiling
    assert by_year[2026].renewals_now == 10  # 365/365 + 365/45 = 9.1, rounded up
    assert by_year[2026].renewals_needed == 10  # 365/200 + 365/45 = 9.9
    assert by_year[2027].renewals_needed == 12  # 365/100 + 365/45 = 11.8
    assert by_year[2029].renewals_needed == 16  # 365/47 + 365/45 = 15.9


@pytest.mark.parametrize("bad", ["2030..2026", "soon", "2026..", "1800"])
def test_years_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="years"):
        parse_years(bad)

_YAMLISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=12)
    | st.dates().map(str),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["version", "thresholds", "rules", "owners",
                                       "exceptions", "severity", "trust", "match", "team",
                                       "expires", "sha256", "location", "reason", "owner",
                                       "expiring_soon_days", "wildcard", "x"]),
                      inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(doc=_YAMLISH)
def test_any_yaml_is_a_policy_or_one_policy_error(doc: object) -> None:
    import yaml as _yaml

    assert "\n" not in _outcome(_yaml.safe_dump(doc))


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_is_a_policy_or_one_policy_error(text: str) -> None:
    assert "\n" not in _outcome(text)


def _outcome(text: str) -> str:
    """"ok", or the one-line PolicyError; anything else raised fails the test."""
    try:
        parse(text)
    except PolicyError as err:
        return str(err)
    return "ok"
