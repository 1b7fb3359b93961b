"""TCP reassembly of one direction: order, retransmission, overlap, gaps, wraparound."""

from __future__ import annotations

from certwarden.traffic.reassembly import MAX_HELD, SYN, HalfStream


def _stream() -> tuple[HalfStream, bytearray]:
    got = bytearray()

    def sink(data: bytes) -> bool:
        got.extend(data)
        return True

    return HalfStream(sink), got


def test_in_order_after_syn() -> None:
    h, got = _stream()
    h.segment(99, SYN, b"")
    h.segment(100, 0, b"abc")
    h.segment(103, 0, b"def")
    assert got == b"abcdef"


def test_out_of_order_is_held_until_the_hole_fills() -> None:
    h, got = _stream()
    h.segment(99, SYN, b"")
    h.segment(106, 0, b"ghi")
    h.segment(103, 0, b"def")
    assert got == b""
    h.segment(100, 0, b"abc")
    assert got == b"abcdefghi"


def test_retransmission_and_overlap_are_trimmed() -> None:
    h, got = _stream()
    h.segment(99, SYN, b"")
    h.segment(100, 0, b"abcd")
    h.segment(100, 0, b"abcd")  # exact retransmission
    h.segment(102, 0, b"cdEF")  # overlap: only EF is new
    h.segment(104, 0, b"XX")  # a later copy of bytes already delivered: the first copy wins
    assert got == b"abcdEF"


def test_overlapping_held_segments() -> None:
    h, got = _stream()
    h.segment(99, SYN, b"")
    h.segment(104, 0, b"efgh")
    h.segment(102, 0, b"cdef")
    h.segment(100, 0, b"ab")
    assert got == b"abcdefgh"


def test_flow_without_handshake_starts_at_first_data() -> None:
    h, got = _stream()
    h.segment(5000, 0, b"hello")
    h.segment(5005, 0, b" world")
    assert got == b"hello world"


def test_sequence_wraparound() -> None:
    h, got = _stream()
    h.segment(0xFFFFFFFD, SYN, b"")
    h.segment(0xFFFFFFFE, 0, b"ab")
    h.segment(0, 0, b"cd")
    assert got == b"abcd"


def test_a_gap_at_the_end_is_reported_and_stops_delivery() -> None:
    h, got = _stream()
    h.segment(99, SYN, b"")
    h.segment(100, 0, b"ab")
    h.segment(110, 0, b"zz")
    h.end()
    assert got == b"ab"
    assert h.gap
    assert h.done
    h.segment(102, 0, b"cdefghij")  # late data after the end is ignored
    assert got == b"ab"


def test_too_much_held_data_is_a_gap() -> None:
    h, got = _stream()
    h.segment(99, SYN, b"")
    for i in range(MAX_HELD // 1000 + 2):
        h.segment(2000 + i * 1000, 0, b"x" * 1000)
    assert h.done
    assert h.gap
    assert got == b""


def test_sink_saying_done_stops_the_stream() -> None:
    calls = []

    def sink(data: bytes) -> bool:
        calls.append(data)
        return False

    h = HalfStream(sink)
    h.segment(1, 0, b"a")
    h.segment(2, 0, b"b")
    assert calls == [b"a"]
    assert h.done
    assert not h.gap


def test_a_flood_of_tiny_out_of_order_segments_is_a_gap_quickly() -> None:
    h, got = _stream()
    h.segment(99, SYN, b"")
    for i in range(5000):
        h.segment(10_000 + 2 * i, 0, b"x")  # never fills: every other byte missing
    assert h.done
    assert h.gap
    assert got == b""
