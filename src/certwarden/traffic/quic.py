"""QUIC Initial packets (RFC 9000/9001, QUIC v2 RFC 9369, draft-29): the TLS hellos inside.

Initial packets are encrypted with keys anyone can derive from the client's Destination
Connection ID, so a passive observer can read the ClientHello and ServerHello (never the
certificate: that travels in Handshake packets under negotiated keys). We remove header
protection, decrypt with AES-128-GCM (cryptography), walk the frames, reassemble the CRYPTO
stream by offset and hand complete handshake messages on.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from certwarden.traffic.keylog import expand_label
from certwarden.traffic.stream import MAX_HANDSHAKE, MessageSink

V1, V2, DRAFT29 = 0x00000001, 0x6B3343CF, 0xFF00001D
_SALTS = {
    V1: bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
    V2: bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
    DRAFT29: bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899"),
}
_MAX_CRYPTO = 64 * 1024  # Initial CRYPTO data per direction; a ClientHello is a few KB
_MAX_FRAGMENTS = 256  # pending CRYPTO pieces; real clients send a handful


def _keys(version: int, dcid: bytes, server: bool) -> tuple[AESGCM, bytes, Cipher[modes.ECB]]:
    initial = hmac.new(_SALTS[version], dcid, hashlib.sha256).digest()
    secret = expand_label(initial, b"server in" if server else b"client in", 32, "sha256")
    prefix = b"quicv2 " if version == V2 else b"quic "
    key = expand_label(secret, prefix + b"key", 16, "sha256")
    iv = expand_label(secret, prefix + b"iv", 12, "sha256")
    hp = expand_label(secret, prefix + b"hp", 16, "sha256")
    return AESGCM(key), iv, Cipher(algorithms.AES(hp), modes.ECB())  # noqa: S305 - RFC 9001 5.4.3


def _varint(b: bytes, pos: int) -> tuple[int, int]:
    first = b[pos]
    n = 1 << (first >> 6)
    if pos + n > len(b):
        raise ValueError("truncated varint")
    v = first & 0x3F
    for i in range(1, n):
        v = (v << 8) | b[pos + i]
    return v, pos + n


def _is_initial(b0: int, version: int) -> bool:
    ptype = (b0 & 0x30) >> 4
    return ptype == 1 if version == V2 else ptype == 0


def looks_like_quic_initial(p: bytes) -> bool:
    """A client's first datagram: a long-header Initial of a version we can decrypt."""
    if len(p) < 1200 or p[0] & 0xC0 != 0xC0:  # RFC 9000 14.1: client Initials are padded
        return False
    version = int.from_bytes(p[1:5], "big")
    return version in _SALTS and _is_initial(p[0], version)


class QuicHalf:
    """One direction's Initial packets. ``dcid`` supplies the client's current DCID."""

    __slots__ = ("_keys", "buf", "crypto", "done", "hs", "on_message", "server")

    def __init__(self, on_message: MessageSink, *, server: bool) -> None:
        self.on_message = on_message
        self.server = server
        self.crypto: dict[int, bytes] = {}
        self.buf = 0  # contiguous CRYPTO bytes delivered so far
        self.hs = b""
        self.done = False
        self._keys: dict[tuple[int, bytes], tuple[AESGCM, bytes, Cipher[modes.ECB]]] = {}

    def datagram(self, p: bytes, client_dcid: bytes | None) -> bytes | None:
        """Process one datagram; returns the DCID of a client Initial (keys for both sides)."""
        if self.done:
            # after a Retry the client's next Initial names the DCID the server's keys use
            if not self.server and len(p) > 6 and p[0] & 0xC0 == 0xC0:
                version = int.from_bytes(p[1:5], "big")
                if version in _SALTS and _is_initial(p[0], version):
                    return p[6:6 + p[5]]
            return None
        pos, seen_dcid = 0, None
        while pos < len(p) and not self.done:
            try:
                nxt, dcid = self._packet(p, pos, client_dcid)
            except (ValueError, IndexError, InvalidTag, struct.error):
                return seen_dcid
            if dcid is not None and seen_dcid is None:
                seen_dcid = dcid
                client_dcid = dcid
            if nxt is None:
                break
            pos = nxt
        return seen_dcid

    def _packet(self, p: bytes, pos: int, client_dcid: bytes | None
                ) -> tuple[int | None, bytes | None]:
        b0 = p[pos]
        if b0 & 0xC0 != 0xC0:
            return None, None  # a short-header packet: 1-RTT, nothing for us
        version = int.from_bytes(p[pos + 1:pos + 5], "big")
        if version not in _SALTS:
            return None, None
        q = pos + 5
        dlen = p[q]
        dcid = p[q + 1:q + 1 + dlen]
        q += 1 + dlen
        slen = p[q]
        q += 1 + slen
        initial = _is_initial(b0, version)
        retry = (b0 & 0x30) >> 4 == (0 if version == V2 else 3)
        if retry:
            return None, None
        if initial:
            tlen, q = _varint(p, q)
            q += tlen
        length, q = _varint(p, q)
        end = q + length
        if end > len(p):
            raise ValueError("packet longer than datagram")
        if not initial:
            return end, None
        key_dcid = client_dcid if self.server else dcid
        if key_dcid is None:
            return end, None
        self._decrypt(p, pos, q, end, version, key_dcid)
        return end, (None if self.server else dcid)

    def _decrypt(self, p: bytes, start: int, pn_off: int, end: int, version: int,
                 dcid: bytes) -> None:
        keys = self._keys.get((version, dcid))
        if keys is None:
            keys = self._keys[(version, dcid)] = _keys(version, dcid, self.server)
        aead, iv, hp = keys
        sample = p[pn_off + 4:pn_off + 20]
        if len(sample) < 16:
            raise ValueError("short sample")
        enc = hp.encryptor()
        mask = enc.update(sample) + enc.finalize()
        b0 = p[start] ^ (mask[0] & 0x0F)
        pn_len = (b0 & 0x03) + 1
        pn_bytes = bytes(x ^ m for x, m in zip(p[pn_off:pn_off + pn_len], mask[1:1 + pn_len],
                                              strict=True))
        header = bytes([b0]) + p[start + 1:pn_off] + pn_bytes
        pn = int.from_bytes(pn_bytes, "big")
        nonce = bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big"), strict=True))
        plain = aead.decrypt(nonce, p[pn_off + pn_len:end], header)
        self._frames(plain)

    def _frames(self, f: bytes) -> None:
        pos = 0
        while pos < len(f):
            ftype = f[pos]
            pos += 1
            if ftype == 0x00:  # PADDING: an Initial carries hundreds of these bytes
                pos = len(f) - len(f[pos:].lstrip(b"\x00"))
                continue
            if ftype == 0x01:  # PING
                continue
            if ftype in (0x02, 0x03):  # ACK
                _largest, pos = _varint(f, pos)
                _delay, pos = _varint(f, pos)
                count, pos = _varint(f, pos)
                _first, pos = _varint(f, pos)
                for _ in range(count * 2):
                    _v, pos = _varint(f, pos)
                if ftype == 0x03:
                    for _ in range(3):
                        _v, pos = _varint(f, pos)
            elif ftype == 0x06:  # CRYPTO
                off, pos = _varint(f, pos)
                n, pos = _varint(f, pos)
                self._crypto(off, f[pos:pos + n])
                pos += n
            else:
                return  # CONNECTION_CLOSE or anything else: no more CRYPTO in this packet

    def _crypto(self, off: int, data: bytes) -> None:
        if off + len(data) > _MAX_CRYPTO or len(self.crypto) > _MAX_FRAGMENTS:
            self.done = True
            return
        if len(data) > len(self.crypto.get(off, b"")):
            self.crypto[off] = data
        progressed = True
        while progressed:
            progressed = False
            for o in sorted(self.crypto):
                d = self.crypto[o]
                if o <= self.buf < o + len(d):
                    self.hs += d[self.buf - o:]
                    self.buf = o + len(d)
                    progressed = True
                if o + len(d) <= self.buf:
                    del self.crypto[o]
        self._messages()

    def _messages(self) -> None:
        hs = self.hs
        while len(hs) >= 4:
            mtype = hs[0]
            mlen = int.from_bytes(hs[1:4], "big")
            if mlen > MAX_HANDSHAKE:
                self.done = True
                return
            if len(hs) < 4 + mlen:
                break
            self.on_message(mtype, hs[4:4 + mlen], 0x0304)
            hs = hs[4 + mlen:]
            if mtype in (1, 2):  # the hello is all an Initial carries that we use
                self.done = True
                break
        self.hs = hs
