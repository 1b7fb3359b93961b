"""Captures as inventory sightings (``pcap://file#flow``), ready for the store's Inventory."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from certwarden.records import LocationKind
from certwarden.traffic.observe import CaptureUnreadableError, sightings_from_capture
from tests.conftest import require_corpus


def test_sightings_from_a_starttls_capture() -> None:
    pcap = str(require_corpus("zeek", "pcaps", "tls", "smtp-starttls.pcap"))
    sightings = list(sightings_from_capture(pcap))
    assert len(sightings) == 1
    s = sightings[0]
    assert s.location.kind is LocationKind.PCAP
    assert s.location.uri.startswith("pcap://" + os.path.abspath(pcap).replace(" ", "%20"))
    assert s.location.uri.endswith("#tcp:192.168.4.149:54170-74.125.142.26:25")
    assert (s.location.host, s.location.port) == ("74.125.142.26", 25)
    assert s.certificate.subject_cn == "mx.google.com"
    assert len(s.chain) == 2
    assert s.tls_version == "TLSv12"
    assert s.extra["starttls"] == "smtp"
    assert s.extra["ja3"]
    assert s.extra["ja4x"]
    assert s.seen_at.tzinfo is dt.UTC
    assert s.seen_at.year == 2014


def test_sightings_without_ja4plus() -> None:
    pcap = str(require_corpus("zeek", "pcaps", "tls", "tls1.2.pcap"))
    s = next(iter(sightings_from_capture(pcap, ja4plus=False)))
    assert "ja4x" not in s.extra
    assert "ja4s" not in s.extra


def test_tls13_capture_has_no_sighting() -> None:
    """TLS 1.3 hides the certificate: sessions exist, sightings do not."""
    pcap = str(require_corpus("zeek", "pcaps", "tls", "tls13_wolfssl.pcap"))
    assert list(sightings_from_capture(pcap)) == []


def test_unreadable_capture(tmp_path: os.PathLike[str]) -> None:
    bad = os.path.join(tmp_path, "x.pcap")
    with open(bad, "wb") as fh:
        fh.write(b"garbage garbage")
    with pytest.raises(CaptureUnreadableError, match="not a pcap"):
        list(sightings_from_capture(bad))
