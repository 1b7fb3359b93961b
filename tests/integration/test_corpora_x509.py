"""The X.509 toolkit over corpora written by others: pkilint's certificates, x509-limbo's cases.

pkilint computed the SHA-256 of every certificate it lints; x509-limbo states the verdict of
every path-validation case. Each disagreement below is an explicit expected failure with why.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from certwarden.errors import ParseError
from certwarden.x509 import Kind, parse_bytes, read_source
from certwarden.x509.verify import TrustStore, verify_chain
from tests.conftest import require_corpus

# cryptography 48 refuses these DER encodings outright; we report a ParseError naming them.
PKILINT_UNPARSEABLE = {
    "pkix/ecdsa_with_null_sigalg_param.crttest": "ECDSA AlgorithmIdentifier with NULL params",
    "pkix/mldsa_null_param.crttest": "ML-DSA AlgorithmIdentifier with NULL params",
    "tls_br/ov_pre_certificate/prohibited_printablestring_char.crttest":
        "PrintableString holding a character outside its alphabet",
    "tls_br/root_ca/validity_period_no_seconds.crttest": "UTCTime without seconds (X.690 forbids)",
}


def _pkilint_files() -> list[Path]:
    root = require_corpus("pkilint", "integration_certificate")
    return sorted(root.rglob("*.crttest"))


def test_pkilint_fingerprints_equal_pkilints_own() -> None:
    expected: dict[str, str] = {}
    root = require_corpus("pkilint")
    with open(root / "expected_findings.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["file"].startswith("integration_certificate/"):
                expected[row["file"].removeprefix("integration_certificate/")] = row["sha256"]
    seen = agree = 0
    failures: list[str] = []
    unparseable: list[tuple[str, str]] = []
    for path in _pkilint_files():
        rel = str(path.relative_to(root / "integration_certificate"))
        try:
            cert = read_source(str(path)).certificates[0]
        except ParseError as exc:
            unparseable.append((rel, exc.source))
            continue
        assert rel not in PKILINT_UNPARSEABLE, f"{rel} now parses: update the list"
        if rel in expected:
            seen += 1
            if expected[rel] == cert.sha256:
                agree += 1
            else:
                failures.append(rel)
    print(f"pkilint fingerprints: {agree}/{seen} agree")
    assert sorted(rel for rel, _ in unparseable) == sorted(PKILINT_UNPARSEABLE)
    assert all(rel in source for rel, source in unparseable)  # the error names its file
    assert seen == 431  # every certificate of the pinned pkilint corpus
    assert not failures


def _oracle_self_signed(der: bytes) -> bool | None:
    """cryptography's own (Rust) check, where it gives a definite answer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = cx509.load_der_x509_certificate(der)
    try:
        c.verify_directly_issued_by(c)
    except InvalidSignature:
        return False
    except (UnsupportedAlgorithm, ValueError, TypeError):
        return None  # SHA-1/MD5, unknown keys, name mismatch: no verdict from this oracle
    return True


def test_kind_over_pkilint_and_limbo_agrees_with_signature_oracle() -> None:
    ders: list[tuple[str, bytes]] = []
    for path in _pkilint_files():
        try:
            for cert in read_source(str(path)).certificates:
                ders.append((path.name, cert.der))
        except ParseError:
            continue
    limbo = json.loads(require_corpus("x509-limbo", "limbo.json").read_text())
    for case in limbo["testcases"]:
        pems = [*case["trusted_certs"], *case["untrusted_intermediates"], case["peer_certificate"]]
        for pem in pems:
            try:
                ders.extend((case["id"], c.der) for c in parse_bytes(pem.encode()).certificates)
            except ParseError:
                continue
    checked = 0
    counts = dict.fromkeys(Kind, 0)
    for name, der in ders:
        cert = parse_bytes(der, source=name).certificates[0]
        counts[cert.kind] += 1
        if not cert.self_issued:
            assert cert.kind is Kind.ISSUED, name
            continue
        verdict = _oracle_self_signed(der)
        if verdict is not None:
            checked += 1
            assert (cert.kind is Kind.SELF_SIGNED) == verdict, name
    print(f"kind over {len(ders)} certificates: {dict(counts)}; {checked} checked by the oracle")
    # measured over the pinned corpora: every kind occurs, and the oracle judged 361 of them
    assert checked == 361
    assert counts == {Kind.SELF_SIGNED: 251, Kind.SELF_ISSUED: 125, Kind.ISSUED: 793}


# --- x509-limbo: every case, with each disagreement explained -----------------------------

LIMBO_DISAGREEMENTS = {
    "pathlen::validation-ignores-pathlen-in-leaf":
        "cryptography's Web PKI profile forbids cA=TRUE on an end-entity; RFC 5280 allows it",
    "rfc5280::ca-as-leaf":
        "cryptography's Web PKI profile forbids cA=TRUE on an end-entity; RFC 5280 allows it",
    "pathlen::self-issued-certs-pathlen":
        "cryptography's path builder does not chain through self-issued (key-rollover) CAs",
    "pathlen::max-chain-depth-1-self-issued":
        "cryptography's path builder does not chain through self-issued (key-rollover) CAs",
    "rfc5280::nc::permitted-dn-match":
        "cryptography rejects directoryName name constraints as unsupported",
}


def _limbo_cases() -> list[Any]:
    try:
        path = require_corpus("x509-limbo", "limbo.json")
    except pytest.skip.Exception:
        return []
    cases = json.loads(path.read_text())["testcases"]
    return [pytest.param(c, id=c["id"], marks=[pytest.mark.xfail(
        reason=LIMBO_DISAGREEMENTS[c["id"]], strict=True)] if c["id"] in LIMBO_DISAGREEMENTS
        else []) for c in cases]


def _certs(pems: list[str]) -> list[Any]:
    out = []
    for pem in pems:
        out.extend(parse_bytes(pem.encode()).certificates)
    return out


@pytest.mark.parametrize("case", _limbo_cases())
def test_limbo_case(case: dict[str, Any]) -> None:
    try:
        anchors = _certs(case["trusted_certs"])
        inters = _certs(case["untrusted_intermediates"])
        leaf = parse_bytes(case["peer_certificate"].encode()).certificates[0]
    except ParseError as exc:
        unreadable: ParseError | None = exc
    else:
        unreadable = None
    if unreadable is not None:
        # A certificate we cannot read cannot validate: that is a FAILURE verdict.
        assert case["expected_result"] == "FAILURE", str(unreadable)
        return
    when = (dt.datetime.fromisoformat(case["validation_time"].replace("Z", "+00:00"))
            if case["validation_time"] else None)
    peer = case.get("expected_peer_name") or {}
    result = verify_chain(leaf, inters, TrustStore.of(anchors), hostname=peer.get("value"),
                          at=when, max_depth=case["max_chain_depth"],
                          client=case["validation_kind"] == "CLIENT")
    got = "SUCCESS" if result.valid else "FAILURE"
    assert got == case["expected_result"], (result.problems, result.detail)
    if not result.valid:
        assert result.problems, "a refusal always names at least one problem"
