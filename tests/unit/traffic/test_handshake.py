"""TLS over reassembled streams: fragmentation across records and segments, STARTTLS by
content, broken length fields, and the fingerprint vectors of FoxIO's reference tests."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from certwarden.traffic import fingerprint as fp
from certwarden.traffic.analyzer import CaptureStats, analyze
from certwarden.traffic.session import TlsSession
from certwarden.traffic.stream import TlsHalf, find_tls_start
from certwarden.traffic.tls import ClientHello, ServerHello, parse_client_hello
from tests.unit.traffic import pcapgen as g


def _run(tmp_path: Path, frames: list[tuple[float, bytes]]) -> tuple[CaptureStats,
                                                                     list[TlsSession]]:
    p = tmp_path / "c.pcap"
    p.write_bytes(g.pcap([(ts, g.frame(1, ip)) for ts, ip in frames]))
    stats = CaptureStats(path=str(p))
    return stats, list(analyze(str(p), stats=stats))


def _server_flight(ders: list[bytes], *, record_size: int = 16384) -> bytes:
    return g.records(g.server_hello()) + g.records(g.certificate(ders) + g.handshake(14, b""),
                                                   size=record_size)


def test_certificate_split_across_records_and_segments(tmp_path: Path,
                                                       self_signed_der: bytes) -> None:
    chain = [self_signed_der, self_signed_der[::-1]]  # the second is opaque bytes: still listed
    frames = g.tcp_flow(g.records(g.client_hello()), _server_flight(chain, record_size=97),
                        mss=61)
    _stats, sessions = _run(tmp_path, frames)
    assert [s.server_chain for s in sessions] == [tuple(chain)]
    assert sessions[0].cipher == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert sessions[0].version == "TLSv12"


def test_segments_shuffled_and_duplicated(tmp_path: Path, self_signed_der: bytes) -> None:
    frames = g.tcp_flow(g.records(g.client_hello()), _server_flight([self_signed_der]), mss=100)
    body = frames[2:-2]
    rng = random.Random(7)
    shuffled = body + rng.sample(body, 5)
    rng.shuffle(shuffled)
    _stats, sessions = _run(tmp_path, frames[:2] + shuffled + frames[-2:])
    assert [s.server_chain for s in sessions] == [(self_signed_der,)]


def test_missing_segment_is_a_gap_not_a_crash(tmp_path: Path, self_signed_der: bytes) -> None:
    frames = g.tcp_flow(g.records(g.client_hello()), _server_flight([self_signed_der]), mss=100)
    server_idx = [i for i, (_t, ip) in enumerate(frames) if ip[12:16] == bytes([10, 0, 0, 2])]
    del frames[server_idx[3]]  # lose a piece of the Certificate message
    _stats, sessions = _run(tmp_path, frames)
    assert len(sessions) == 1
    s = sessions[0]
    assert s.server_chain == ()
    assert s.cipher is not None  # what came before the hole is kept
    assert any("gap" in n for n in s.notes)


@pytest.mark.parametrize(("client_pre", "server_pre", "label"), [
    (b"EHLO me\r\nSTARTTLS\r\n", b"220 mx ESMTP\r\n250 STARTTLS\r\n220 go ahead\r\n", "smtp"),
    (b"a1 STARTTLS\r\n", b"* OK IMAP4rev1 ready\r\na1 OK begin\r\n", "imap"),
    (b"STLS\r\n", b"+OK POP3 ready\r\n+OK begin\r\n", "pop3"),
    (b"AUTH TLS\r\n", b"220 FTP ready\r\n234 AUTH TLS ok\r\n", "ftp"),
    (b"<stream:stream to='x'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
     b"<stream:stream from='x'><proceed/>", "xmpp"),
    (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", b"S", "postgresql"),
    # LDAP ExtendedRequest for StartTLS (RFC 4511 4.14) and its success response
    (bytes.fromhex("301d02010177188016") + b"1.3.6.1.4.1.1466.20037",
     bytes.fromhex("300c02010178070a010004000400"), "ldap"),
    # MySQL: protocol-10 greeting, then the client's SSLRequest (capability flags, 32 bytes)
    (b"\x20\x00\x00\x01" + b"\x05\xae\xff\x01" + b"\x00" * 28,
     b"\x4a\x00\x00\x00\x0a8.0.35\x00" + b"\x01" * 60, "mysql"),
    (b"STARTTLS\r\n", b":irc.example.net 670 nick :STARTTLS successful\r\n", "irc"),
    (b"AUTH GSSAPI\r\n", b"220 GridFTP ready\r\n334 ADAT must follow\r\n", "ftp-gsi"),
])
def test_starttls_found_by_content(tmp_path: Path, self_signed_der: bytes, client_pre: bytes,
                                   server_pre: bytes, label: str) -> None:
    frames = g.tcp_flow(client_pre + g.records(g.client_hello()),
                        server_pre + _server_flight([self_signed_der]),
                        server=("10.0.0.2", 2525))
    _stats, sessions = _run(tmp_path, frames)
    assert [(s.starttls, s.server_chain) for s in sessions] == [(label, (self_signed_der,))]


def _broken_hellos() -> list[tuple[str, bytes]]:
    hello = g.client_hello()
    inner = bytearray(hello)
    inner[4 + 2 + 32 + 1:4 + 2 + 32 + 3] = b"\xff\xf0"  # cipher list length past the end
    hs_len = bytearray(hello)
    hs_len[1:4] = (0xFFFF).to_bytes(3, "big")  # handshake length past the record
    rec = bytearray(g.records(hello))
    rec[3:5] = (0x3FFF).to_bytes(2, "big")  # record length past the end of the stream
    return [("field", g.records(bytes(inner))), ("handshake", g.records(bytes(hs_len))),
            ("record", bytes(rec))]


@pytest.mark.parametrize(("where", "client_bytes"), _broken_hellos())
def test_length_fields_past_the_end(tmp_path: Path, where: str, client_bytes: bytes) -> None:
    frames = g.tcp_flow(client_bytes, g.records(g.server_hello()))
    stats, sessions = _run(tmp_path, frames)
    assert stats.error is None
    assert len(sessions) == 1
    s = sessions[0]
    assert s.ja4 is None
    assert s.cipher is not None  # the server side is still read
    if where == "field":
        assert any("malformed handshake message 1" in n for n in s.notes)


def test_non_tls_stream_is_dropped_after_the_preface_limit() -> None:
    half = TlsHalf(lambda *_: None, lambda: True, lambda *_: None)
    assert half.feed(b"GET / HTTP/1.1\r\n" * 100)
    assert not half.feed(b"x" * 70_000)


def test_find_tls_start() -> None:
    rec = g.records(g.client_hello())
    assert find_tls_start(rec) == 0
    assert find_tls_start(b"STARTTLS\r\n" + rec) == 10
    assert find_tls_start(b"\x16\x03\x01\x00") is None  # too short to judge
    assert find_tls_start(b"\x16\x03\x01\xff\xff" + b"\x01" * 20) is None  # absurd length


def test_sslv2_client_hello_then_sslv3(tmp_path: Path, self_signed_der: bytes) -> None:
    v2 = struct.pack("!BHHHH", 1, 0x0300, 6, 0, 16) + bytes.fromhex("010080000004") + b"c" * 16
    client = bytes([0x80 | (len(v2) >> 8), len(v2) & 0xFF]) + v2
    server = g.records(g.server_hello(version=0x0300, cipher=0x0004)
                       + g.certificate([self_signed_der]) + g.handshake(14, b""),
                       version=0x0300)
    _stats, sessions = _run(tmp_path, g.tcp_flow(client, server))
    s = sessions[0]
    assert (s.version, s.cipher, s.server_chain) == ("SSLv3", "TLS_RSA_WITH_RC4_128_MD5",
                                                     (self_signed_der,))
    assert s.ja3 is None  # JA3 is undefined for an SSLv2 hello
    assert s.ja4 is not None
    assert s.ja4.startswith("ts3i")


# --- fingerprints: vectors from FoxIO's own Rust unit tests (rust/ja4/src/tls.rs) ---------

def test_ja4_reference_vector() -> None:
    ch = ClientHello(
        version=0x0303,
        ciphers=(0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013,
                 0xC014, 0x009C, 0x009D, 0x002F, 0x0035),
        extensions=(0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D, 0x0005,
                    0x0023, 0x0012, 0x002B, 0xFF01, 0x000B, 0x000A, 0x0015),
        sni="example.com", alpn=(b"h2",), supported_versions=(0x0304,),
        sig_algs=(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601))
    assert fp.ja4(ch) == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert fp.ja4(ch, raw=True) == (
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_"
        "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_"
        "0403,0804,0401,0503,0805,0501,0806,0601")


def test_ja4s_reference_vector() -> None:
    sh = ServerHello(version=0x0303, cipher=0xC030, extensions=(0x0005, 0x0017, 0xFF01, 0x0000))
    assert fp.ja4s(sh) == "t120400_c030_4e8089b08790"


def test_ja4_alpn_edge_cases() -> None:
    base = parse_client_hello(g.client_hello()[4:])
    for alpn, chars in ((b"h", "h0"), (b"\xff\xfe", "99"), (b"x\xe9", "x9"), (None, "00")):
        hello = parse_client_hello(g.client_hello(alpn=(alpn,) if alpn else ())[4:])
        assert fp.ja4(hello)[8:10] == chars, alpn
    assert fp.ja4(base)[3] == "d"
    assert fp.ja4(parse_client_hello(g.client_hello(sni=None)[4:]))[3] == "i"


def test_ja3_string_drops_grease() -> None:
    hello = parse_client_hello(g.client_hello(ciphers=(0x0A0A, 0x1301))[4:])
    assert fp.ja3_string(hello) == "771,4865,0-16-10-11-13,29-23,0"
