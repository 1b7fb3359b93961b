"""One connection's TLS handshake, as seen passively, and the record it ends as (``TlsSession``).

A ``Flow`` owns the two directions (TCP reassembly + TLS record layer, or DTLS datagrams),
learns which side is the client from the ClientHello, and collects the hellos and the
certificate chains. ``Flow.session()`` turns it into an immutable ``TlsSession``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from certwarden.traffic import fingerprint as fp
from certwarden.traffic import starttls
from certwarden.traffic.dtls import DtlsHalf
from certwarden.traffic.keylog import KeyLog, decryptor
from certwarden.traffic.quic import QuicHalf
from certwarden.traffic.reassembly import HalfStream
from certwarden.traffic.stream import MessageSink, TlsHalf
from certwarden.traffic.tls import (
    ClientHello,
    ServerHello,
    TlsDecodeError,
    parse_certificate,
    parse_client_hello,
    parse_server_hello,
    parse_sslv2_client_hello,
    parse_sslv2_server_hello,
)

CLIENT_HELLO, SERVER_HELLO, CERTIFICATE = 1, 2, 11
SSLV2_CLIENT_HELLO, SSLV2_SERVER_HELLO = 0x101, 0x104
_TLS13_SERVER_VERSIONS = frozenset({0x0304, 0xFEFC})


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSession:
    """What one TLS/DTLS connection showed on the wire. Times are capture seconds (UTC)."""

    capture: str
    flow: str  # "tcp:client:port-server:port"
    transport: str  # "tcp" | "udp" (DTLS) | "quic"
    client: str
    client_port: int
    server: str
    server_port: int
    start: float
    end: float
    version: str | None = None  # Zeek spelling (TLSv12, TLSv13, DTLSv12, SSLv3 ...)
    cipher: str | None = None
    sni: str | None = None
    alpn_offered: tuple[str, ...] = ()
    alpn: str | None = None  # the server's choice
    ja3: str | None = None
    ja3s: str | None = None
    ja4: str | None = None
    ja4_r: str | None = None
    ja4s: str | None = None
    server_chain: tuple[bytes, ...] = ()  # DER, as presented (leaf first)
    client_chain: tuple[bytes, ...] = ()
    starttls: str | None = None  # the protocol that upgraded to TLS, None for plain TLS
    established: bool = False  # both sides went encrypted after a ServerHello, no fatal alert
    retry: bool = False  # a HelloRetryRequest was seen
    notes: tuple[str, ...] = ()  # gaps, malformed messages: why something may be missing


def _addr(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


class Flow:
    """The two directions of one connection (A = the first packet's sender)."""

    __slots__ = (
        "a",
        "b",
        "capture",
        "ch",
        "client_certs",
        "client_dcid",
        "client_side",
        "datagrams",
        "dtls",
        "fatal",
        "fins",
        "first_sh",
        "halves",
        "keylog",
        "last",
        "notes",
        "quic",
        "retry",
        "server_certs",
        "sh",
        "start",
        "tls",
        "transport",
    )

    def __init__(self, capture: str, transport: str, a: tuple[bytes, int],
                 b: tuple[bytes, int], ts: float, *, quic: bool = False,
                 keylog: KeyLog | None = None) -> None:
        self.capture = capture
        self.transport = transport
        self.a, self.b = a, b
        self.start = self.last = ts
        self.ch: ClientHello | None = None
        self.sh: ServerHello | None = None
        self.first_sh: ServerHello | None = None
        self.retry = False
        self.client_side: int | None = None  # 0 = A, 1 = B
        self.server_certs: tuple[bytes, ...] = ()
        self.client_certs: tuple[bytes, ...] = ()
        self.fatal = False
        self.fins = 0  # bit 0: A sent FIN, bit 1: B sent FIN
        self.notes: list[str] = []
        self.dtls = transport == "udp" and not quic
        self.tls: tuple[TlsHalf, TlsHalf] | None = None
        self.halves: tuple[HalfStream, HalfStream] | None = None  # TCP
        self.datagrams: tuple[DtlsHalf, DtlsHalf] | None = None  # UDP (DTLS)
        self.quic: tuple[QuicHalf, QuicHalf] | None = None  # UDP (QUIC); A is the client
        self.client_dcid: bytes | None = None
        self.keylog = keylog
        if quic:
            self.quic = (QuicHalf(self._on_message_fn(0), server=False),
                         QuicHalf(self._on_message_fn(1), server=True))
        elif self.dtls:
            self.datagrams = (DtlsHalf(self._on_message_fn(0)), DtlsHalf(self._on_message_fn(1)))
        else:
            tls = (self._tls_half(0), self._tls_half(1))
            self.tls = tls
            self.halves = (HalfStream(tls[0].feed), HalfStream(tls[1].feed))

    # --- wiring -------------------------------------------------------------------------
    def _tls_half(self, side: int) -> TlsHalf:
        return TlsHalf(self._on_message_fn(side), lambda: self._on_ccs(),
                       lambda level, _desc: self._on_alert(level))

    def _on_message_fn(self, side: int) -> MessageSink:
        def on_message(mtype: int, body: bytes, _recver: int) -> None:
            try:
                self._message(side, mtype, body)
            except TlsDecodeError as exc:
                self.notes.append(f"malformed handshake message {mtype}: {exc}")
        return on_message

    def _on_ccs(self) -> bool:
        """True when the sender's following handshake records are encrypted (not TLS 1.3)."""
        return not (self.retry or self._tls13())

    def _on_alert(self, level: int) -> None:
        if level == 2:
            self.fatal = True

    def _tls13(self) -> bool:
        sh = self.sh
        if sh is None:
            return False
        v = sh.selected_version or sh.version
        return v in _TLS13_SERVER_VERSIONS or v >> 8 in (0x7F, 0x7E, 0xFB)

    # --- handshake messages --------------------------------------------------------------
    def _message(self, side: int, mtype: int, body: bytes) -> None:
        if mtype == CLIENT_HELLO:
            # The first ClientHello is the fingerprint (as FoxIO's reference takes it); the
            # second one after a HelloRetryRequest only repeats it with a new key share.
            if self.ch is None:
                self.ch = parse_client_hello(body, dtls=self.dtls)
                self.client_side = side
        elif mtype == SSLV2_CLIENT_HELLO:
            if self.ch is None:
                self.ch = parse_sslv2_client_hello(body)
                self.client_side = side
        elif mtype == SERVER_HELLO:
            if side == self.client_side:
                return
            sh = parse_server_hello(body, dtls=self.dtls)
            if self.client_side is None:
                self.client_side = 1 - side
            if sh.retry:
                self.retry = True
            if self.sh is None or self.sh.retry:
                self.sh = sh
                if not sh.retry and self.keylog and self._tls13():
                    self._handshake_keys(side)
            if self.first_sh is None:
                self.first_sh = sh  # JA4S is taken from the first ServerHello (even an HRR)
        elif mtype == SSLV2_SERVER_HELLO:
            sh, certs = parse_sslv2_server_hello(body)
            if self.client_side is None:
                self.client_side = 1 - side
            if self.sh is None:
                self.sh = sh
                self.server_certs = certs
        elif mtype == CERTIFICATE:
            certs = parse_certificate(body, tls13=self._tls13())
            if side == self.client_side:
                self.client_certs = self.client_certs or certs
            else:
                if self.client_side is None:
                    self.client_side = 1 - side
                self.server_certs = self.server_certs or certs

    def _handshake_keys(self, server_side: int) -> None:
        """TLS 1.3 with the capture's own key log: read the encrypted handshake too."""
        if self.tls is None or self.ch is None or self.sh is None or self.keylog is None:
            return
        for side, label in ((server_side, "SERVER_HANDSHAKE_TRAFFIC_SECRET"),
                            (1 - server_side, "CLIENT_HANDSHAKE_TRAFFIC_SECRET")):
            self.tls[side].decrypt = decryptor(self.keylog, self.ch.random, self.sh.cipher,
                                               label)

    # --- state ---------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """Both directions have nothing more to tell (TCP only; DTLS flows end by time)."""
        return self.halves is not None and self.halves[0].done and self.halves[1].done

    def end(self) -> None:
        for h in self.halves or ():
            h.end()

    def has_tls(self) -> bool:
        if self.tls is not None and not self.server_certs and self.sh is None:
            for side, half in enumerate(self.tls):
                if half.rdp_certs:  # RDP's own security layer carried the chain, not TLS
                    self.server_certs = half.rdp_certs
                    self.client_side = 1 - side
        return self.ch is not None or self.sh is not None or bool(self.server_certs)

    def session(self, *, ja4plus: bool = True) -> TlsSession:
        cs = self.client_side or 0
        client, server = (self.a, self.b) if cs == 0 else (self.b, self.a)
        ch, sh = self.ch, self.sh
        notes = list(self.notes)
        starttls_label = None
        established = False
        if self.tls is not None and self.halves is not None:
            ctls, stls = self.tls[cs], self.tls[1 - cs]
            starttls_label = starttls.classify(ctls.preface, stls.preface)
            established = sh is not None and ctls.encrypted and stls.encrypted and not self.fatal
            for h, who in ((self.halves[cs], "client"), (self.halves[1 - cs], "server")):
                if h.gap:
                    notes.append(f"{who} stream has a gap (missing data); parsing stopped there")
            for t, who in ((ctls, "client"), (stls, "server")):
                if t.error:
                    notes.append(f"{who}: {t.error}")
        elif sh is not None:
            established = not self.fatal
        version = None
        if sh is not None:
            v = sh.selected_version if sh.selected_version is not None else sh.version
            version = fp.version_name(v)
        elif ch is not None and ch.sslv2:
            version = None
        dtls = self.dtls
        c_addr, s_addr = _addr(client[0]), _addr(server[0])
        ja4, ja4_r = fp.ja4_both(ch, dtls=dtls) if ch is not None else (None, None)
        return TlsSession(
            capture=self.capture,
            flow=(f"{self.transport}:{_endpoint(c_addr, client[1])}-"
                  f"{_endpoint(s_addr, server[1])}"),
            transport=self.transport,
            client=c_addr, client_port=client[1],
            server=s_addr, server_port=server[1],
            start=self.start, end=self.last,
            version=version,
            cipher=fp.cipher_name(sh.cipher, sslv2=sh.sslv2) if sh is not None else None,
            sni=ch.sni if ch is not None else None,
            alpn_offered=tuple(a.decode("utf-8", "replace") for a in ch.alpn) if ch else (),
            alpn=sh.alpn.decode("utf-8", "replace") if sh is not None and sh.alpn else None,
            ja3=fp.ja3(ch) if ch is not None else None,
            # JA3S/JA4S describe the first ServerHello (an HRR if there was one), as tshark
            # and FoxIO's reference do; version and cipher come from the final one.
            ja3s=fp.ja3s(self.first_sh) if self.first_sh is not None else None,
            ja4=ja4,
            ja4_r=ja4_r,
            ja4s=(fp.ja4s(self.first_sh, dtls=dtls, quic=self.quic is not None)
                  if self.first_sh is not None and ja4plus and not self.first_sh.sslv2 else None),
            server_chain=self.server_certs,
            client_chain=self.client_certs,
            starttls=starttls_label,
            established=established,
            retry=self.retry,
            notes=tuple(notes),
        )


def _endpoint(a: str, port: int) -> str:
    return f"[{a}]:{port}" if ":" in a else f"{a}:{port}"
