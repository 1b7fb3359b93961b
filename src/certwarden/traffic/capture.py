"""Capture file readers: pcap (both byte orders, micro/nanosecond), pcapng (many sections and
interfaces), either one gzip-compressed. Streaming: one frame at a time from a bounded buffer.

Every frame comes out as ``(timestamp, linktype, data)``. A damaged file ends with a
``CaptureError`` naming the file and the byte offset; frames read before it stay valid, so the
caller can keep what it has (``Stats`` counts what was read).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Generator, Iterator
from typing import IO, cast

from certwarden.errors import ParseError

# A frame larger than this is a corrupt length field, not a packet: the largest link MTU a
# capture can carry (jumbo / loopback 64 KiB, pcapng's own 256 KiB recommendation).
MAX_FRAME = 256 * 1024
_CHUNK = 1 << 20  # bytes read per refill; bounds memory regardless of file size

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"

Frame = tuple[float, int, bytes]
# Not a link type: a frame with this "link type" carries a TLS key log from a pcapng DSB.
LINK_SECRETS = -1
TLS_KEYLOG = 0x544C534B


class CaptureError(ParseError):
    """A capture file that cannot be read (further): not a capture, truncated, corrupt."""


class _Buffered:
    """A forward-only reader over a file object with a bounded buffer."""

    __slots__ = ("buf", "fh", "offset", "pos")

    def __init__(self, fh: IO[bytes], head: bytes) -> None:
        self.fh = fh
        self.buf = head
        self.pos = 0
        self.offset = 0  # file offset of buf[0]

    def take(self, n: int) -> bytes | None:
        """Exactly ``n`` bytes, or ``None`` at a clean end of file; raises on a torn record."""
        end = self.pos + n
        if end > len(self.buf):
            self.buf = self.buf[self.pos:] + self.fh.read(max(_CHUNK, n))
            self.offset += self.pos
            self.pos, end = 0, n
            while len(self.buf) < n:
                more = self.fh.read(max(_CHUNK, n - len(self.buf)))
                if not more:
                    if not self.buf:
                        return None
                    raise EOFError(self.offset)
                self.buf += more
        out = self.buf[self.pos:end]
        self.pos = end
        return out

    @property
    def here(self) -> int:
        return self.offset + self.pos


def open_capture(path: str) -> tuple[IO[bytes], bytes]:
    """Open a capture (gzip or not); return the raw stream and its first 4 bytes."""
    try:
        fh: IO[bytes] = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    except OSError as exc:
        raise CaptureError(path, exc.strerror or "cannot open") from None
    head = fh.read(4)
    if head[:2] == b"\x1f\x8b":
        fh.close()
        fh = cast(IO[bytes], gzip.GzipFile(path, "rb"))
        try:
            head = fh.read(4)
        except (OSError, EOFError, zlib.error) as exc:
            fh.close()
            raise CaptureError(path, f"bad gzip data ({exc})") from None
    return fh, head


def read_frames(path: str) -> Generator[Frame, None, None]:
    """Yield every frame of a pcap or pcapng file (plain or gzip)."""
    fh, head = open_capture(path)
    try:
        if head in _PCAP_MAGICS:
            yield from _pcap(path, fh, head)
        elif head == _PCAPNG_SHB:
            yield from _pcapng(path, fh, head)
        elif not head:
            raise CaptureError(path, "empty file")
        else:
            raise CaptureError(path, "not a pcap or pcapng capture (unknown magic "
                                     f"{head.hex()})")
    except EOFError as exc:
        raise CaptureError(path, f"truncated at byte {exc.args[0]}") from None
    except (OSError, gzip.BadGzipFile, zlib.error, struct.error) as exc:
        raise CaptureError(path, f"unreadable ({type(exc).__name__}: {exc})") from None
    finally:
        fh.close()


def _pcap(path: str, fh: IO[bytes], magic: bytes) -> Iterator[Frame]:
    order, unit = _PCAP_MAGICS[magic]
    rd = _Buffered(fh, magic)
    hdr = rd.take(24)
    if hdr is None:
        raise CaptureError(path, "truncated global header")
    linktype = struct.unpack_from(order + "I", hdr, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(order + "IIII")
    take = rd.take
    unpack_from = rec.unpack_from
    while True:
        buf, pos = rd.buf, rd.pos
        nbuf = len(buf)
        while pos + 16 <= nbuf:  # fast path: whole records already buffered
            sec, frac, caplen, _origlen = unpack_from(buf, pos)
            end = pos + 16 + caplen
            if caplen > MAX_FRAME or end > nbuf:
                break
            yield sec + frac * unit, linktype, buf[pos + 16:end]
            pos = end
        rd.pos = pos
        h = take(16)
        if h is None:
            return
        sec, frac, caplen, _origlen = rec.unpack(h)
        if caplen > MAX_FRAME:
            raise CaptureError(path, f"record at byte {rd.here - 16} claims {caplen} bytes "
                                     f"(more than {MAX_FRAME}); the file is corrupt")
        data = take(caplen)
        if data is None:
            raise EOFError(rd.here)
        yield sec + frac * unit, linktype, data


def _pcapng(path: str, fh: IO[bytes], magic: bytes) -> Iterator[Frame]:
    rd = _Buffered(fh, magic)
    order = "<"
    ifaces: list[tuple[int, float]] = []  # (linktype, seconds per tick) per interface id
    epb = struct.Struct("<IIIIII")  # block type, length, interface, ts high, ts low, caplen
    max_block = MAX_FRAME + 4096
    while True:
        buf, pos = rd.buf, rd.pos
        nbuf = len(buf)
        unpack = epb.unpack_from
        while pos + 28 <= nbuf:  # fast path: whole Enhanced Packet Blocks already buffered
            btype, blen, iface, hi, lo, caplen = unpack(buf, pos)
            if btype != 6 or blen < 32 or blen > max_block or blen & 3 or pos + blen > nbuf \
                    or iface >= len(ifaces) or caplen > blen - 32:
                break
            lt, tick = ifaces[iface]
            yield ((hi << 32) | lo) * tick, lt, buf[pos + 28:pos + 28 + caplen]
            pos += blen
        rd.pos = pos
        start = rd.here
        h = rd.take(8)
        if h is None:
            return
        if h[:4] == _PCAPNG_SHB:
            bom = rd.take(4)
            if bom is None:
                raise EOFError(rd.here)
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise CaptureError(path, f"bad byte-order magic at byte {start}")
            ifaces = []  # interface ids are per section
            epb = struct.Struct(order + "IIIIII")
            blen = struct.unpack_from(order + "I", h, 4)[0]
            _check_len(path, blen, start, 28)
            if rd.take(blen - 12) is None:
                raise EOFError(rd.here)
            continue
        btype, blen = struct.unpack(order + "II", h)
        _check_len(path, blen, start, 12)
        body = rd.take(blen - 8)
        if body is None:
            raise EOFError(rd.here)
        body = body[:-4]  # trailing copy of the block length
        if btype == 6:  # Enhanced Packet Block
            if len(body) < 20:
                raise CaptureError(path, f"short packet block at byte {start}")
            iface, hi, lo, caplen = struct.unpack_from(order + "IIII", body)
            if iface >= len(ifaces) or caplen > len(body) - 20:
                raise CaptureError(path, f"bad packet block at byte {start}")
            lt, tick = ifaces[iface]
            yield ((hi << 32) | lo) * tick, lt, body[20:20 + caplen]
        elif btype == 1:  # Interface Description Block
            if len(body) < 8:
                raise CaptureError(path, f"short interface block at byte {start}")
            ifaces.append((struct.unpack_from(order + "H", body)[0], _tsresol(order, body[8:])))
        elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
            if not ifaces or len(body) < 4:
                raise CaptureError(path, f"bad simple packet block at byte {start}")
            orig = struct.unpack_from(order + "I", body)[0]
            yield 0.0, ifaces[0][0], body[4:4 + orig]
        elif btype == 2:  # obsolete Packet Block
            if len(body) < 20:
                raise CaptureError(path, f"short packet block at byte {start}")
            iface, _drops, hi, lo, caplen = struct.unpack_from(order + "HHIII", body)
            if iface >= len(ifaces) or caplen > len(body) - 20:
                raise CaptureError(path, f"bad packet block at byte {start}")
            lt, tick = ifaces[iface]
            yield ((hi << 32) | lo) * tick, lt, body[20:20 + caplen]
        elif btype == 10 and len(body) >= 8:  # Decryption Secrets Block
            stype, slen = struct.unpack_from(order + "II", body)
            if stype == TLS_KEYLOG:
                yield 0.0, LINK_SECRETS, body[8:8 + slen]
        # other blocks (statistics, name resolution ...) carry no frames


def _check_len(path: str, blen: int, start: int, minimum: int) -> None:
    if blen < minimum or blen % 4 or blen > MAX_FRAME + 4096:
        raise CaptureError(path, f"block at byte {start} has impossible length {blen}")


def _tsresol(order: str, opts: bytes) -> float:
    """Seconds per timestamp tick from an IDB's ``if_tsresol`` option (default microseconds)."""
    i = 0
    while i + 4 <= len(opts):
        code, length = struct.unpack_from(order + "HH", opts, i)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = opts[i + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        i += 4 + ((length + 3) & ~3)
    return 1e-6
