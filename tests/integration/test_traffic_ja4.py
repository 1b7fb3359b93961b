"""JA4 / JA4S / JA4X against FoxIO's Rust reference (../shared/corpora/ja4).

One case per connection of ``expected_tls_fingerprints.csv`` that the Rust implementation
fingerprinted (TCP TLS, QUIC, tunnels, and a TLS 1.3 chain readable only through the key log
embedded in its pcapng); there are no known misses.
"""

from __future__ import annotations

import collections
import csv
from functools import cache

import pytest

from certwarden.traffic.analyzer import CaptureStats, analyze
from certwarden.traffic.session import TlsSession
from certwarden.x509.ja4x import ja4x
from tests.conftest import require_corpus


@cache
def _rows() -> list[dict[str, str]]:
    root = require_corpus("ja4")
    with open(root / "expected_tls_fingerprints.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh)
                if r["impl"] == "rust" and (r["ja4"] or r["ja4s"] or r["ja4x_chain"])]


@cache
def _sessions(pcap: str) -> tuple[TlsSession, ...]:
    stats = CaptureStats(path=pcap)
    out = tuple(analyze(str(require_corpus("ja4") / pcap), stats=stats))
    assert stats.error is None
    return out


def _cases() -> list[object]:
    cases = []
    seen: collections.Counter[str] = collections.Counter()
    for r in _rows():
        key = f"{r['pcap'].removeprefix('pcaps/')}#{r['stream']}"
        seen[key] += 1
        if seen[key] > 1:
            key += f"-{seen[key]}"
        cases.append(pytest.param(r, id=key))
    return cases


@pytest.mark.parametrize("row", _cases())
def test_ja4_family_matches_rust_reference(row: dict[str, str]) -> None:
    pair = {(row["src"], int(row["srcport"])), (row["dst"], int(row["dstport"]))}
    match = [s for s in _sessions(row["pcap"])
             if {(s.client, s.client_port), (s.server, s.server_port)} == pair]
    assert match, "no TLS session found for this connection"
    s = match[0]
    got_x = " ".join(ja4x(d) for d in s.server_chain)
    assert (s.ja4 or "", s.ja4s or "", got_x) == (row["ja4"], row["ja4s"], row["ja4x_chain"])


def test_ja4_corpus_is_covered() -> None:
    """The corpus has the connections we think it has (guards against an empty parametrize)."""
    rows = _rows()
    assert len(rows) == 202  # the pinned corpus
    assert sum(1 for r in rows if r["ja4x_chain"]) == 27
