"""Capture readers and link types: every format and link type the issue names, plus damage."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certwarden.traffic.analyzer import CaptureStats, analyze
from certwarden.traffic.capture import CaptureError, read_frames
from tests.unit.traffic import pcapgen as g


def _tls_frames(der: bytes, *, linktype: int = 1, vlans: int = 0,
                v6: bool = False) -> list[tuple[float, bytes]]:
    client = g.records(g.client_hello(sni="svc.example.org"))
    server = g.records(g.server_hello() + g.certificate([der]) + g.handshake(14, b""))
    flow = g.tcp_flow(client, server)
    out = []
    for ts, ip in flow:
        if v6:  # re-frame the same TCP segment over IPv6
            tcp = ip[20:]
            ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64,
                             b"\x20\x01" + b"\x00" * 13 + (b"\x01" if ip[15] == 1 else b"\x02"),
                             b"\x20\x01" + b"\x00" * 13 + (b"\x02" if ip[15] == 1 else b"\x01")
                             ) + tcp
        out.append((ts, g.frame(linktype, ip, vlans=vlans)))
    return out


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def _only_session(path: str) -> tuple[CaptureStats, list[object]]:
    stats = CaptureStats(path=path)
    sessions = list(analyze(path, stats=stats))
    return stats, sessions


@pytest.mark.parametrize(("linktype", "vlans", "v6"), [
    (1, 0, False), (1, 1, False), (1, 2, True), (113, 0, False), (276, 0, True),
    (101, 0, False), (228, 0, False), (229, 0, True), (0, 0, False), (0, 0, True)])
@pytest.mark.parametrize(("big_endian", "nano"), [(False, False), (True, False), (False, True),
                                                  (True, True)])
def test_pcap_link_types_and_byte_orders(tmp_path: Path, self_signed_der: bytes, linktype: int,
                                         vlans: int, v6: bool, big_endian: bool,
                                         nano: bool) -> None:
    if (linktype == 228 and v6) or (linktype == 229 and not v6):
        pytest.skip("raw IPv4/IPv6 link types carry only their own family")
    frames = _tls_frames(self_signed_der, linktype=linktype, vlans=vlans, v6=v6)
    path = _write(tmp_path, "c.pcap", g.pcap(frames, linktype=linktype, big_endian=big_endian,
                                             nano=nano))
    stats, sessions = _only_session(path)
    assert stats.error is None
    assert len(sessions) == 1
    s = sessions[0]
    assert s.server_chain == (self_signed_der,)  # type: ignore[attr-defined]
    assert s.sni == "svc.example.org"  # type: ignore[attr-defined]
    assert s.server_port == 443  # type: ignore[attr-defined]
    assert abs(s.start - 1_700_000_000.0) < 1e-6  # type: ignore[attr-defined]


def test_gzip_pcap(tmp_path: Path, self_signed_der: bytes) -> None:
    path = _write(tmp_path, "c.pcap.gz", gzip.compress(g.pcap(_tls_frames(self_signed_der))))
    _stats, sessions = _only_session(path)
    assert [s.server_chain for s in sessions] == [(self_signed_der,)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("big_endian", [False, True])
def test_pcapng_sections_interfaces_and_resolution(tmp_path: Path, self_signed_der: bytes,
                                                   big_endian: bool) -> None:
    eth = _tls_frames(self_signed_der, linktype=1)
    raw = _tls_frames(self_signed_der, linktype=101)
    # section 1: the flow on interface 1 (raw IP); section 2: the same flow on interface 0
    sections = [[(1, ts, d) for ts, d in raw], [(0, ts + 10, d) for ts, d in eth]]
    data = g.pcapng(sections, linktypes=[1, 101], big_endian=big_endian, tsresol=9)
    path = _write(tmp_path, "c.pcapng", data)
    frames = list(read_frames(path))
    assert len(frames) == len(eth) + len(raw)
    assert frames[0][1] == 101
    assert frames[-1][1] == 1
    assert abs(frames[0][0] - 1_700_000_000.0) < 1e-6
    stats, sessions = _only_session(path)
    assert stats.error is None
    # the same 4-tuple twice: the first flow closed with FINs, the second is a new session
    assert len(sessions) == 2


def test_gzip_pcapng(tmp_path: Path, self_signed_der: bytes) -> None:
    data = g.pcapng([[(0, ts, d) for ts, d in _tls_frames(self_signed_der)]], linktypes=[1])
    path = _write(tmp_path, "c.pcapng.gz", gzip.compress(data))
    _stats, sessions = _only_session(path)
    assert len(sessions) == 1


# --- damage --------------------------------------------------------------------------------

def test_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="not a pcap or pcapng"):
        list(read_frames(_write(tmp_path, "x.pcap", b"hello world, not a capture")))


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="empty"):
        list(read_frames(_write(tmp_path, "x.pcap", b"")))


def test_truncated_record_keeps_what_was_read(tmp_path: Path, self_signed_der: bytes) -> None:
    good = g.pcap(_tls_frames(self_signed_der))
    path = _write(tmp_path, "t.pcap", good[:-30])
    stats, sessions = _only_session(path)
    assert stats.error is not None
    assert "truncated" in stats.error
    assert len(sessions) == 1  # the handshake came before the damage


def test_absurd_caplen(tmp_path: Path) -> None:
    hdr = g.pcap([])
    rec = struct.pack("<IIII", 1, 0, 0x7FFFFFFF, 0x7FFFFFFF)
    stats, _ = _only_session(_write(tmp_path, "a.pcap", hdr + rec + b"\x00" * 64))
    assert stats.error is not None
    assert "corrupt" in stats.error


def test_pcapng_bad_block_length(tmp_path: Path) -> None:
    data = g.pcapng([[]], linktypes=[1]) + struct.pack("<II", 6, 7) + b"\x00" * 16
    stats, _ = _only_session(_write(tmp_path, "b.pcapng", data))
    assert stats.error is not None
    assert "impossible length" in stats.error


def test_bad_gzip(tmp_path: Path) -> None:
    data = gzip.compress(g.pcap([(1.0, b"\x00" * 60)]))[:-12] + b"garbage!"
    stats, _ = _only_session(_write(tmp_path, "g.pcap.gz", data))
    assert stats.error is not None


_BASES: dict[str, bytes] = {}


def _base(kind: str) -> bytes:
    if kind not in _BASES:
        from tests.unit.traffic.conftest import make_cert

        frames = _tls_frames(make_cert())
        if kind == "pcap":
            _BASES[kind] = g.pcap(frames)
        elif kind == "pcapng":
            _BASES[kind] = g.pcapng([[(0, ts, d) for ts, d in frames]], linktypes=[1])
        else:
            _BASES[kind] = gzip.compress(g.pcap(frames))
    return _BASES[kind]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["pcap", "pcapng", "gzip"]),
       st.lists(st.tuples(st.integers(min_value=0, max_value=4000), st.integers(0, 255)),
                max_size=12), st.integers(min_value=0, max_value=4000))
def test_fuzzed_capture_never_crashes(tmp_path_factory: pytest.TempPathFactory, kind: str,
                                      flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_base(kind))
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    data = data[:len(data) - cut] if cut < len(data) else data
    path = tmp_path_factory.mktemp("fuzz") / "f.pcap"
    path.write_bytes(bytes(data))
    stats = CaptureStats(path=str(path))
    for s in analyze(str(path), stats=stats):  # only CaptureError may end it, as stats.error
        assert s.transport in ("tcp", "udp")


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=3000))
def test_random_frames_never_crash(tmp_path_factory: pytest.TempPathFactory,
                                   blob: bytes) -> None:
    frames = [(1.0 + i, blob[i:i + 300]) for i in range(0, len(blob), 300)]
    for lt in (1, 113, 276, 101, 0):
        path = tmp_path_factory.mktemp("rnd") / "r.pcap"
        path.write_bytes(g.pcap(frames, linktype=lt))
        stats = CaptureStats(path=str(path))
        list(analyze(str(path), stats=stats))
        assert stats.error is None


def _quic_initial() -> bytes:
    """The first client Initial of Zeek's quic-go interop trace (a real QUIC v1 packet)."""
    from certwarden.traffic.packet import decode
    from tests.conftest import require_corpus

    path = require_corpus("zeek", "pcaps", "quic", "interop", "quic-go_quic-go", "handshake.pcap")
    for _ts, lt, data in read_frames(str(path)):
        pkt = decode(lt, data)
        if pkt is not None and pkt[0] == 17 and len(pkt[7]) >= 1200:
            return pkt[7]
    raise AssertionError("no QUIC Initial in the trace")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=1300), st.integers(0, 255)),
                min_size=1, max_size=8))
def test_fuzzed_quic_initial_never_crashes(flips: list[tuple[int, int]]) -> None:
    from certwarden.traffic.quic import QuicHalf

    data = bytearray(_quic_initial())
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    seen: list[int] = []
    half = QuicHalf(lambda mtype, _body, _v: seen.append(mtype), server=False)
    half.datagram(bytes(data), None)
    assert all(0 <= m < 256 for m in seen)


def test_quic_initial_yields_the_client_hello() -> None:
    from certwarden.traffic.quic import QuicHalf, looks_like_quic_initial

    data = _quic_initial()
    assert looks_like_quic_initial(data)
    seen: list[int] = []
    QuicHalf(lambda mtype, _body, _v: seen.append(mtype), server=False).datagram(data, None)
    assert seen == [1]
