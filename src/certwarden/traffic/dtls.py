"""DTLS (RFC 6347 / 9147) over UDP: records in datagrams, handshake fragments by message_seq.

Only epoch-0 (plaintext) handshake records are read; DTLS 1.3's encrypted unified-header
records and everything after ChangeCipherSpec are skipped.
"""

from __future__ import annotations

import struct

from certwarden.traffic.stream import CCS, HANDSHAKE, MAX_HANDSHAKE, MessageSink

_REC = struct.Struct("!BHH6sH")  # type, version, epoch, sequence, length
_MAX_PENDING = 64  # handshake messages held while fragments arrive; more is a flood


def looks_like_dtls(p: bytes) -> bool:
    """A DTLS handshake record carrying a hello (ClientHello, HelloVerify, ServerHello)."""
    return (len(p) >= 25 and p[0] == HANDSHAKE and p[1] == 0xFE and p[2] in (0xFF, 0xFD, 0xFC)
            and p[13] in (1, 2, 3))


class DtlsHalf:
    """One direction of a DTLS association."""

    __slots__ = ("done", "frags", "on_message", "seen")

    def __init__(self, on_message: MessageSink) -> None:
        self.on_message = on_message
        self.frags: dict[int, tuple[int, int, dict[int, bytes]]] = {}
        self.seen: set[int] = set()
        self.done = False

    def datagram(self, p: bytes) -> None:
        pos, n = 0, len(p)
        while n - pos >= 13 and not self.done:
            if p[pos] & 0xE0 == 0x20:  # DTLS 1.3 unified header: encrypted
                return
            ctype, version, epoch, _seq, length = _REC.unpack_from(p, pos)
            body = p[pos + 13:pos + 13 + length]
            pos += 13 + length
            if len(body) < length or version >> 8 != 0xFE:
                return
            if epoch != 0:
                continue  # encrypted under a negotiated key
            if ctype == HANDSHAKE:
                self._fragment(body, version)
            elif ctype == CCS:
                continue

    def _fragment(self, b: bytes, version: int) -> None:
        pos = 0
        while len(b) - pos >= 12:
            mtype = b[pos]
            mlen = int.from_bytes(b[pos + 1:pos + 4], "big")
            mseq = int.from_bytes(b[pos + 4:pos + 6], "big")
            foff = int.from_bytes(b[pos + 6:pos + 9], "big")
            flen = int.from_bytes(b[pos + 9:pos + 12], "big")
            data = b[pos + 12:pos + 12 + flen]
            pos += 12 + flen
            if mlen > MAX_HANDSHAKE or len(data) < flen or foff + flen > mlen:
                return
            key = mseq * 256 + mtype
            if key in self.seen:
                continue  # a retransmission of a message already parsed
            if foff == 0 and flen == mlen:
                self._message(mtype, mseq, data, version)
                continue
            if len(self.frags) >= _MAX_PENDING and key not in self.frags:
                continue
            _t, _l, parts = self.frags.setdefault(key, (mtype, mlen, {}))
            parts[foff] = data
            whole = _assemble(parts, mlen)
            if whole is not None:
                del self.frags[key]
                self._message(mtype, mseq, whole, version)

    def _message(self, mtype: int, mseq: int, body: bytes, version: int) -> None:
        self.seen.add(mseq * 256 + mtype)
        if len(self.seen) > _MAX_PENDING:
            self.done = True  # a handshake has a dozen messages; more is not a handshake
        self.on_message(mtype, body, version)


def _assemble(parts: dict[int, bytes], total: int) -> bytes | None:
    out = bytearray()
    for off in sorted(parts):
        if off > len(out):
            return None
        out += parts[off][len(out) - off:]
    return bytes(out[:total]) if len(out) >= total else None
