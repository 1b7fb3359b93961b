"""TLS/SSL/DTLS handshake messages: ClientHello, ServerHello, Certificate (and SSLv2's).

Pure functions over one complete handshake message body; a malformed body raises
``TlsDecodeError`` (caught by the stream, which then stops parsing that direction).
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass

GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))

EXT_SNI, EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIG_ALGS, EXT_ALPN = 0, 10, 11, 13, 16
EXT_SUPPORTED_VERSIONS, EXT_QUIC_PARAMS = 43, 57

# RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
_CLIENT_EXTS = frozenset({EXT_SNI, EXT_ALPN, EXT_SUPPORTED_VERSIONS, EXT_GROUPS,
                          EXT_POINT_FORMATS, EXT_SIG_ALGS})


class TlsDecodeError(ValueError):
    """A handshake message whose lengths do not add up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientHello:
    version: int  # legacy_version (0x0002 for an SSLv2 CLIENT-HELLO)
    ciphers: tuple[int, ...]  # as sent, GREASE included (SSLv2 3-byte kinds are kept as ints)
    extensions: tuple[int, ...]  # types as sent, GREASE included
    sni: str | None = None
    alpn: tuple[bytes, ...] = ()
    supported_versions: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    point_formats: tuple[int, ...] = ()
    sig_algs: tuple[int, ...] = ()
    sslv2: bool = False
    random: bytes = b""  # keys a TLS key log entry


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHello:
    version: int  # legacy_version
    cipher: int
    extensions: tuple[int, ...]
    selected_version: int | None = None  # from supported_versions (TLS 1.3)
    alpn: bytes | None = None
    retry: bool = False  # a HelloRetryRequest, not a real ServerHello
    sslv2: bool = False


class _Reader:
    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf, self.pos = buf, pos
        self.end = len(buf) if end is None else end

    def u8(self) -> int:
        if self.pos + 1 > self.end:
            raise TlsDecodeError("truncated")
        self.pos += 1
        return self.buf[self.pos - 1]

    def u16(self) -> int:
        if self.pos + 2 > self.end:
            raise TlsDecodeError("truncated")
        self.pos += 2
        return int(_H.unpack_from(self.buf, self.pos - 2)[0])

    def u24(self) -> int:
        if self.pos + 3 > self.end:
            raise TlsDecodeError("truncated")
        b = self.buf
        self.pos += 3
        return (b[self.pos - 3] << 16) | (b[self.pos - 2] << 8) | b[self.pos - 1]

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise TlsDecodeError("length past the end")
        self.pos += n
        return self.buf[self.pos - n:self.pos]

    def sub(self, n: int) -> _Reader:
        if self.pos + n > self.end:
            raise TlsDecodeError("length past the end")
        r = _Reader(self.buf, self.pos, self.pos + n)
        self.pos += n
        return r

    @property
    def left(self) -> int:
        return self.end - self.pos


def _u16_list(r: _Reader) -> tuple[int, ...]:
    n = r.left // 2
    return struct.unpack_from(f"!{n}H", r.buf, r.pos) if n else ()


def parse_client_hello(body: bytes, *, dtls: bool = False) -> ClientHello:
    r = _Reader(body)
    version = r.u16()
    random = r.take(32)
    r.take(r.u8())  # session id
    if dtls:
        r.take(r.u8())  # cookie
    cs = r.sub(r.u16())
    ciphers = _u16_list(cs)
    r.take(r.u8())  # compression methods
    exts: list[int] = []
    fields: dict[str, object] = {}
    if r.left >= 2:
        block = r.sub(r.u16())
        pos, end = block.pos, block.end
        while end - pos >= 4:
            etype, dlen = _HH.unpack_from(body, pos)
            pos += 4
            if pos + dlen > end:
                raise TlsDecodeError("length past the end")
            exts.append(etype)
            if etype in _CLIENT_EXTS:
                # one malformed extension must not hide the rest of the hello
                with contextlib.suppress(TlsDecodeError):
                    _client_ext(etype, _Reader(body, pos, pos + dlen), fields)
            pos += dlen
    return ClientHello(version=version, ciphers=tuple(ciphers), extensions=tuple(exts),
                       random=random, **fields)  # type: ignore[arg-type]


def _client_ext(etype: int, d: _Reader, out: dict[str, object]) -> None:
    if etype == EXT_SNI:
        lst = d.sub(d.u16())
        while lst.left >= 3:
            kind, name = lst.u8(), lst.take(lst.u16())
            if kind == 0:
                out["sni"] = name.decode("utf-8", "replace")
                return
    elif etype == EXT_ALPN:
        lst = d.sub(d.u16())
        protos = []
        while lst.left >= 1:
            protos.append(lst.take(lst.u8()))
        out["alpn"] = tuple(protos)
    elif etype == EXT_SUPPORTED_VERSIONS:
        out["supported_versions"] = _u16_list(d.sub(d.u8()))
    elif etype == EXT_GROUPS:
        out["groups"] = _u16_list(d.sub(d.u16()))
    elif etype == EXT_POINT_FORMATS:
        out["point_formats"] = tuple(d.take(d.u8()))
    elif etype == EXT_SIG_ALGS:
        out["sig_algs"] = _u16_list(d.sub(d.u16()))


def parse_server_hello(body: bytes, *, dtls: bool = False) -> ServerHello:
    r = _Reader(body)
    version = r.u16()
    random = r.take(32)
    if version == 0x7F12 or (0x7F00 < version < 0x7F16):
        pass  # TLS 1.3 drafts before 22 had no session id echo
    else:
        r.take(r.u8())
    cipher = r.u16()
    if not (0x7F00 < version < 0x7F16):
        r.take(1)  # compression method
    exts: list[int] = []
    selected: int | None = None
    alpn: bytes | None = None
    if r.left >= 2:
        block = r.sub(r.u16())
        while block.left >= 4:
            etype = block.u16()
            data = block.sub(block.u16())
            exts.append(etype)
            if etype == EXT_SUPPORTED_VERSIONS and data.left == 2:
                selected = data.u16()
            elif etype == EXT_ALPN and data.left >= 3:
                lst = data.sub(data.u16())
                alpn = lst.take(lst.u8())
    return ServerHello(version=version, cipher=cipher, extensions=tuple(exts),
                       selected_version=selected, alpn=alpn, retry=random == HRR_RANDOM)


def parse_certificate(body: bytes, *, tls13: bool = False) -> tuple[bytes, ...]:
    """The DER certificates of a Certificate message, in the order sent."""
    r = _Reader(body)
    if tls13:
        r.take(r.u8())  # certificate_request_context
    lst = r.sub(r.u24())
    certs = []
    while lst.left >= 3:
        n = lst.u24()
        if n:
            certs.append(lst.take(n))
        if tls13:
            lst.take(lst.u16())  # per-entry extensions
    return tuple(certs)


def parse_sslv2_client_hello(msg: bytes) -> ClientHello:
    """SSLv2 CLIENT-HELLO (message type 1 already consumed)."""
    r = _Reader(msg)
    version, cs_len, sid_len, ch_len = r.u16(), r.u16(), r.u16(), r.u16()
    specs = r.take(cs_len)
    r.take(sid_len)
    r.take(ch_len)
    ciphers = tuple(int.from_bytes(specs[i:i + 3], "big") for i in range(0, cs_len - 2, 3))
    return ClientHello(version=version, ciphers=ciphers, extensions=(), sslv2=True)


def parse_sslv2_server_hello(msg: bytes) -> tuple[ServerHello, tuple[bytes, ...]]:
    """SSLv2 SERVER-HELLO (type 4 consumed): the hello and its one certificate, if any."""
    r = _Reader(msg)
    r.u8()  # session id hit
    cert_type, version = r.u8(), r.u16()
    cert_len, cs_len, _cid_len = r.u16(), r.u16(), r.u16()
    cert = r.take(cert_len)
    specs = r.take(cs_len)
    cipher = int.from_bytes(specs[:3], "big") if len(specs) >= 3 else 0
    hello = ServerHello(version=version, cipher=cipher, extensions=(), sslv2=True)
    return hello, ((cert,) if cert and cert_type == 1 else ())
