"""The TLS record layer of one direction, over reassembled bytes (TCP) or datagrams (DTLS).

TLS is found by content, not by port: the first bytes that form a plausible handshake record
start the parse, so STARTTLS upgrades (SMTP, IMAP, POP3, FTP, XMPP, IRC, LDAP, MySQL,
PostgreSQL, RDP ...) and TLS on any port need no per-protocol code. Handshake messages are
reassembled across records and segments; parsing stops at the first encrypted byte
(ChangeCipherSpec before TLS 1.3, application data always) so a finished direction costs
nothing more.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Callable

from certwarden.traffic.rdp import find_rdp_certificates
from certwarden.traffic.tls import TlsDecodeError

# Bytes of plaintext (a STARTTLS dialogue, a MySQL greeting, an RDP connect response) searched
# before giving up on TLS; also the most a non-TLS connection ever costs us in memory.
MAX_PREFACE = 16 * 1024
# RFC 8446 5.1/5.2: a record is at most 2^14 plus 2048 bytes of expansion (+256 for TLS 1.3).
MAX_RECORD = (1 << 14) + 2048 + 256
# A handshake message bigger than this is a corrupt length; it bounds what one connection
# direction can make us buffer. (A chain is usually ~5-20 KB, but Zeek's fragmented-handshake
# trace carries a real 340 KB Certificate message.)
MAX_HANDSHAKE = 1 << 20

CCS, ALERT, HANDSHAKE, APPDATA, HEARTBEAT = 20, 21, 22, 23, 24
_H = struct.Struct("!H")
# RFC 2228 ADAT (client) and its 335/235 replies (server), as GridFTP's GSI uses them
_ADAT = re.compile(rb"(?m)^(?:ADAT |[23]35 ADAT=)([A-Za-z0-9+/=]+)")

# on_message(msg_type, body, record_version); on_ccs(); on_alert(level, desc)
MessageSink = Callable[[int, bytes, int], None]


class TlsHalf:
    """Feed bytes of one direction; calls ``on_message`` for every complete handshake message.

    ``feed`` returns False once nothing more can be learned (encrypted, not TLS, malformed).
    """

    __slots__ = (
        "buf",
        "decrypt",
        "encrypted",
        "error",
        "gsi",
        "hs",
        "on_alert",
        "on_ccs",
        "on_message",
        "preface",
        "rdp_certs",
        "record_version",
        "sslv2",
        "started",
    )

    def __init__(self, on_message: MessageSink, on_ccs: Callable[[], bool],
                 on_alert: Callable[[int, int], None]) -> None:
        self.on_message = on_message
        self.on_ccs = on_ccs  # returns True when the rest of this direction is encrypted
        self.on_alert = on_alert
        self.buf = b""
        self.hs = b""
        self.started = False
        self.preface = b""  # the plaintext before TLS began (kept, bounded, for STARTTLS naming)
        self.encrypted = False
        self.sslv2 = False
        self.record_version = 0
        self.error: str | None = None
        self.rdp_certs: tuple[bytes, ...] = ()  # Standard RDP Security's chain, when present
        self.gsi: bytes | None = None  # GSI mode: TLS bytes decoded from ADAT lines, pending
        # TLS 1.3 with a key log: decrypts an encrypted record to (inner type, plaintext)
        self.decrypt: Callable[[bytes, bytes], tuple[int, bytes] | None] | None = None

    def feed(self, data: bytes) -> bool:
        buf = self.buf + data if self.buf else data
        if self.gsi is not None:
            return self._gsi(buf)
        if not self.started:
            start = find_tls_start(buf)
            if start is None and buf[:2] == b"\x03\x00" and not self.rdp_certs:
                self.rdp_certs = find_rdp_certificates(buf)
            if start is None and b"ADAT" in buf:
                m = _ADAT.search(buf)
                if m is not None:  # GridFTP's GSI: TLS records base64-encoded in FTP ADAT
                    self.preface = buf[:min(m.start(), 4096)]
                    self.started, self.gsi = True, b""
                    return self._gsi(buf[m.start():])
            if start is None:
                if len(buf) > MAX_PREFACE:
                    self.buf = b""
                    return False
                self.buf = buf
                return True
            if start < 0:  # SSLv2 record header at offset 0
                self.sslv2, start = True, 0
            self.preface = buf[:min(start, 4096)]
            self.started = True
            buf = buf[start:]
        self.buf = b""
        try:
            pos = self._records_v2(buf) if self.sslv2 else self._records(buf)
        except TlsDecodeError as exc:
            self.error = str(exc)
            return False
        if pos < 0:
            return False
        self.buf = buf[pos:]
        return True

    def _gsi(self, buf: bytes) -> bool:
        """Complete ADAT lines are decoded and their TLS bytes parsed as records."""
        assert self.gsi is not None
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl].strip(), buf[nl + 1:]
            m = _ADAT.match(line)
            if m is None:
                continue
            try:
                tls = self.gsi + base64.b64decode(m.group(1), validate=True)
            except (binascii.Error, ValueError):
                self.error = "undecodable ADAT line"
                return False
            try:
                pos = self._records(tls)
            except TlsDecodeError as exc:
                self.error = str(exc)
                return False
            if pos < 0:
                return False
            self.gsi = tls[pos:]
        if len(buf) > MAX_PREFACE * 4:
            return False  # no line end in sight: not the protocol we thought
        self.buf = buf
        return True

    def _records(self, buf: bytes) -> int:
        pos, n = 0, len(buf)
        while n - pos >= 5:
            ctype = buf[pos]
            length = _H.unpack_from(buf, pos + 3)[0]
            if ctype < CCS or ctype > HEARTBEAT or buf[pos + 1] != 3 or length > MAX_RECORD:
                raise TlsDecodeError(f"not a TLS record (type {ctype}, length {length})")
            if n - pos - 5 < length:
                break
            self.record_version = _H.unpack_from(buf, pos + 1)[0]
            body = buf[pos + 5:pos + 5 + length]
            pos += 5 + length
            if ctype == HANDSHAKE:
                if self.encrypted:
                    return -1  # an encrypted Finished: nothing more to learn here
                self._handshake(body)
            elif ctype == CCS:
                if self.on_ccs():
                    self.encrypted = True
            elif ctype == APPDATA:
                self.encrypted = True
                inner = self.decrypt(buf[pos - 5 - length:pos - length], body) \
                    if self.decrypt is not None else None
                if inner is None or inner[0] != HANDSHAKE:
                    return -1  # application data (or no key): nothing more to learn
                self._handshake(inner[1])
            elif ctype == ALERT and len(body) == 2 and not self.encrypted:
                self.on_alert(body[0], body[1])
        return pos

    def _handshake(self, body: bytes) -> None:
        hs = self.hs + body if self.hs else body
        pos, n = 0, len(hs)
        while n - pos >= 4:
            mtype = hs[pos]
            mlen = (hs[pos + 1] << 16) | (hs[pos + 2] << 8) | hs[pos + 3]
            if mlen > MAX_HANDSHAKE:
                raise TlsDecodeError(f"handshake message of {mlen} bytes")
            if n - pos - 4 < mlen:
                break
            self.on_message(mtype, hs[pos + 4:pos + 4 + mlen], self.record_version)
            pos += 4 + mlen
        self.hs = hs[pos:]

    def _records_v2(self, buf: bytes) -> int:
        """SSLv2 record headers: one hello each way, then SSLv3/TLS may follow (v2-compat)."""
        pos, n = 0, len(buf)
        while n - pos >= 3:
            b0 = buf[pos]
            if b0 == HANDSHAKE and buf[pos + 1] == 3:  # the server answered with SSLv3/TLS
                self.sslv2 = False
                rest = self._records(buf[pos:])
                return rest if rest < 0 else pos + rest
            if b0 & 0x80:
                length, hlen = ((b0 & 0x7F) << 8) | buf[pos + 1], 2
            else:
                length, hlen = ((b0 & 0x3F) << 8) | buf[pos + 1], 3
            if n - pos - hlen < length:
                break
            msg = buf[pos + hlen:pos + hlen + length]
            pos += hlen + length
            if msg and msg[0] in (1, 4):
                self.on_message(0x100 | msg[0], msg[1:], 2)  # 0x101 / 0x104: SSLv2 hellos
            else:
                return -1  # anything else in SSLv2 is encrypted
        return pos


def find_tls_start(buf: bytes) -> int | None:
    """Offset of the first plausible TLS hello record; -1 for an SSLv2 hello at 0; else None.

    A candidate must be a handshake record (22, 3, 0..4) of sane length whose first message is
    a ClientHello/ServerHello with a plausible version: binary protocols (MySQL, RDP) that
    carry TLS after their own framing then need no code of their own.
    """
    if len(buf) >= 5 and buf[0] & 0x80 and buf[2] in (1, 4) and buf[3] in (0, 2, 3):
        if buf[2] == 1 and buf[3] in (0, 3) and buf[4] in (2, 0, 1, 3):
            return -1  # SSLv2 CLIENT-HELLO (version 0x0002 or 0x03xx)
        if buf[2] == 4 and len(buf) >= 7 and buf[5] in (0, 3):
            return -1  # SSLv2 SERVER-HELLO
    i = buf.find(b"\x16\x03")
    while i >= 0:
        if len(buf) - i < 11:
            return None  # too short to judge yet: wait for more bytes
        if buf[i + 2] <= 4:
            length = _H.unpack_from(buf, i + 3)[0]
            if 4 <= length <= MAX_RECORD and buf[i + 5] in (1, 2) and buf[i + 6] == 0 \
                    and buf[i + 9] in (3, 0x7F, 0x7E, 0xFB):
                return i
        i = buf.find(b"\x16\x03", i + 1)
    return None
