"""Our verdicts against pkilint's expected findings, for the rules that overlap.

pkilint (digicert/pkilint @ 31d62c9, corpus in ../shared/corpora/pkilint) lints by profile:
a check exists only in the profiles where its standard applies. So each overlapping rule is
compared on the profiles where pkilint runs the equivalent check:

- validity-too-long: cabf.serverauth.certificate_validity_period_exceeds_{398,200,100,47}_days
  (MUST level; the 397-day one is a SHOULD), on TLS BR subscriber and ETSI web profiles;
- weak-key: cabf.rsa_modulus_invalid_length, ts_119_312.8.4.rsa_small_modulus, on TLS BR
  and ETSI profiles;
- weak-signature: *.prohibited_signature_algorithm_encoding, on TLS BR profiles;
- missing-san: *.san_missing, *.san_extension_missing, cabf.certificate_extensions_missing,
  on TLS BR subscriber and ETSI web profiles;
- bad-serial: pkix.certificate_serial_number_out_of_range, on every profile.

Every disagreement is listed in ``KNOWN`` with the reason; the test fails on any other.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import re
from pathlib import Path

import pytest

from certwarden.assess import RULES_BY_ID, Estate, Policy, Target
from certwarden.errors import ParseError
from certwarden.records import Location, Sighting
from certwarden.x509 import parse_bytes
from tests.conftest import require_corpus

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
_SUBSCRIBER = r"tls_br/(dv|ov|ev|iv)_(final|pre)_certificate/|etsi/q?[a-z]*_w_"
COMPARED: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "validity-too-long": (re.compile(r"certificate_validity_period_exceeds_(398|200|100|47)_days$"),
                          re.compile(_SUBSCRIBER)),
    "weak-key": (re.compile(r"rsa_modulus_invalid_length|rsa_small_modulus"),
                 re.compile(r"^(tls_br|etsi)/")),
    "weak-signature": (re.compile(r"prohibited_signature_algorithm_encoding"),
                       re.compile(r"^tls_br/")),
    "missing-san": (re.compile(r"san_missing|san_extension_missing|certificate_extensions_missing"),
                    re.compile(_SUBSCRIBER)),
    "bad-serial": (re.compile(r"serial_number_out_of_range"), re.compile(r".")),
}
_ROOT_SHA1 = ("pkilint flags SHA-1 on self-signed roots; we do not: a trust anchor's own "
              "signature is never checked (RFC 5280 §6.1)")
_FATAL = "pkilint stopped at a FATAL decoding error before its SAN check"
KNOWN: dict[tuple[str, str], str] = {
    ("weak-signature", "tls_br/root_ca/basic_constraints_not_critical"): _ROOT_SHA1,
    ("weak-signature", "tls_br/root_ca/basicconstraints_pathlenconstraint_present"): _ROOT_SHA1,
    ("weak-signature", "tls_br/root_ca/no_aki_extension"): _ROOT_SHA1,
    ("weak-signature", "tls_br/root_ca/teletex_attribute"): _ROOT_SHA1,
    ("missing-san", "tls_br/dv_final_certificate/bad_sct_length"): _FATAL,
    ("missing-san", "etsi/qncp_w_ov_eidas_pre_certificate/bad_bc_extension_encoding"): _FATAL,
    ("validity-too-long",
     "etsi/qevcp_w_psd2_eidas_non_browser_pre_certificate/validity_period_too_long_with_psd2_policy"):
        "pkilint exempts this non-browser PSD2 certificate by its policy OID; we apply the "
        "CA/B ceiling to every serverAuth leaf",
}


def _cases(root: Path) -> dict[str, set[str]]:
    expected: dict[str, set[str]] = collections.defaultdict(set)
    with open(root / "expected_findings.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            expected[row["file"]].add(row["code"])
    return expected


def _fires(rule: str, der_text: bytes, name: str) -> bool | None:
    try:
        cert = parse_bytes(der_text, source=name).certificates[0]
    except ParseError:
        return None  # cryptography refuses it (pkilint reads it raw); nothing to compare
    s = Sighting(certificate=cert, location=Location.file("/corpus"), seen_at=NOW)
    t = Target(certificate=cert, sighting=s, estate=Estate.build([s]), policy=Policy(), now=NOW)
    return bool(list(RULES_BY_ID[rule].check(t)))


@pytest.mark.parametrize("rule", sorted(COMPARED))
def test_agrees_with_pkilint(rule: str) -> None:
    root = require_corpus("pkilint")
    expected = _cases(root)
    codes, scope = COMPARED[rule]
    agree, disagree = collections.Counter[str](), {}
    for path in sorted(root.glob("integration_certificate/**/*.crttest")):
        rel = str(path.relative_to(root))
        name = rel.removeprefix("integration_certificate/").removesuffix(".crttest")
        if not scope.search(name):
            continue
        ours = _fires(rule, path.read_bytes().split(b"\n\n")[0], name)
        if ours is None:
            continue
        theirs = any(codes.search(c) for c in expected.get(rel, ()))
        if ours == theirs:
            agree["both fire" if ours else "both quiet"] += 1
        else:
            disagree[(rule, name)] = "ours" if ours else "pkilint"
    unexplained = {k: v for k, v in disagree.items() if k not in KNOWN}
    assert not unexplained, unexplained
    stale = {k for k in KNOWN if k[0] == rule} - set(disagree)
    assert not stale, f"listed disagreements that no longer happen: {stale}"
    # the comparison must have compared something on both sides
    assert agree["both quiet"] > 0
    if rule != "weak-key":  # the only small-RSA certificates are out of scope or unparseable
        assert agree["both fire"] > 0, (rule, agree)
