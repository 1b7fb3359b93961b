"""TCP reassembly for one direction of one connection.

Delivers bytes in sequence order to a consumer. Handles out-of-order segments (held until the
hole fills), retransmissions and overlaps (trimmed; the first copy wins), flows seen without
their SYN (the first data segment sets the start), and sequence wraparound. Missing data is a
gap: when the held bytes exceed ``MAX_HELD`` or the flow ends with a hole, delivery stops for
good and ``gap`` is set — parsing after a hole would be parsing garbage.
"""

from __future__ import annotations

from collections.abc import Callable

M32 = 0xFFFFFFFF
HALF = 1 << 31
SYN, FIN, RST = 0x02, 0x01, 0x04
# Out-of-order bytes held per direction while waiting for a hole to fill. A handshake needs
# far less; past this the hole is a capture loss, not reordering.
MAX_HELD = 512 * 1024
# ... and at most this many held segments, so a flood of tiny ones cannot make draining slow.
MAX_HELD_SEGMENTS = 1024


class HalfStream:
    """One direction: ``segment()`` in capture order; ``sink(data) -> bool`` (False = done)."""

    __slots__ = ("done", "gap", "held", "held_bytes", "next_seq", "sink")

    def __init__(self, sink: Callable[[bytes], bool]) -> None:
        self.sink = sink
        self.next_seq: int | None = None
        self.held: dict[int, bytes] = {}
        self.held_bytes = 0
        self.done = False  # consumer finished or a gap: ignore everything from now on
        self.gap = False

    def segment(self, seq: int, flags: int, payload: bytes) -> None:
        if self.done:
            return
        if flags & SYN:
            if self.next_seq is None:
                self.next_seq = (seq + 1) & M32
            return  # (TCP Fast Open data on a SYN is not parsed)
        if not payload:
            return
        nxt = self.next_seq
        if nxt is None:
            nxt = self.next_seq = seq  # joined mid-flow: start at the first data we see
        d = (seq - nxt) & M32
        if d == 0:
            self._deliver(payload)
        elif d < HALF:  # in the future: hold it until the hole fills
            if len(payload) > len(self.held.get(seq, b"")):
                self.held_bytes += len(payload) - len(self.held.get(seq, b""))
                self.held[seq] = payload
                if self.held_bytes > MAX_HELD or len(self.held) > MAX_HELD_SEGMENTS:
                    self.end()
            return
        else:  # starts in the past: a retransmission or an overlap
            back = (nxt - seq) & M32
            if back >= len(payload):
                return
            self._deliver(payload[back:])
        if self.held and not self.done:
            self._drain()

    def _deliver(self, data: bytes) -> None:
        self.next_seq = ((self.next_seq or 0) + len(data)) & M32
        if not self.sink(data):
            self._stop()

    def _drain(self) -> None:
        progress = True
        while progress and self.held and not self.done:
            progress = False
            nxt = self.next_seq or 0
            exact = self.held.pop(nxt, None)
            if exact is not None:  # the common case: the segment that fills the hole
                self.held_bytes -= len(exact)
                self._deliver(exact)
                progress = True
                continue
            for seq in list(self.held):
                d = (seq - nxt) & M32
                if d == 0 or d >= HALF:
                    data = self.held.pop(seq)
                    self.held_bytes -= len(data)
                    back = (nxt - seq) & M32
                    if back < len(data):
                        self._deliver(data[back:])
                        progress = True
                        break

    def end(self) -> None:
        """The flow is over (FIN, RST, timeout, end of capture): a hole left is a gap."""
        if self.held and not self.done:
            self.gap = True
        self._stop()

    def _stop(self) -> None:
        self.done = True
        self.held = {}
        self.held_bytes = 0
