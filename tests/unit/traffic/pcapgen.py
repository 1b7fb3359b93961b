"""Build capture files byte by byte for reader and reassembly tests (no capture library).

Only the framing is synthetic; the TLS content tests feed through these comes from real
handshakes (corpus captures) or from our own message builders, each test says which.
"""

from __future__ import annotations

import ipaddress
import struct


def ipv4_tcp(src: str, dst: str, sport: int, dport: int, seq: int, payload: bytes = b"",
             flags: int = 0x18) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 5 << 4, flags, 65535, 0,
                      0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return ip + tcp


def ipv4_udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return ip + udp


def ether(ip: bytes, *, vlans: int = 0) -> bytes:
    etype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    tags = b"".join(struct.pack("!HH", 0x88A8 if i == 0 and vlans > 1 else 0x8100, 100 + i)
                    for i in range(vlans))
    return b"\x00\x11\x22\x33\x44\x55" + b"\x66\x77\x88\x99\xaa\xbb" + tags + \
        struct.pack("!H", etype)


def frame(linktype: int, ip: bytes, *, vlans: int = 0) -> bytes:
    etype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    if linktype == 1:
        return ether(ip, vlans=vlans) + ip
    if linktype == 113:  # SLL
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x00" * 8, etype) + ip
    if linktype == 276:  # SLL2
        return struct.pack("!HHIHBB8s", etype, 0, 1, 1, 0, 6, b"\x00" * 8) + ip
    if linktype in (101, 228, 229):
        return ip
    if linktype == 0:  # BSD null, host byte order family
        return struct.pack("<I", 30 if ip[0] >> 4 == 6 else 2) + ip
    raise ValueError(linktype)


def pcap(frames: list[tuple[float, bytes]], *, linktype: int = 1, big_endian: bool = False,
         nano: bool = False) -> bytes:
    o = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(o + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    unit = 1_000_000_000 if nano else 1_000_000
    for ts, data in frames:
        sec = int(ts)
        frac = round((ts - sec) * unit)
        out.append(struct.pack(o + "IIII", sec, frac, len(data), len(data)) + data)
    return b"".join(out)


def _block(o: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(o + "II", btype, n) + body + struct.pack(o + "I", n)


def pcapng(sections: list[list[tuple[int, float, bytes]]], *, linktypes: list[int],
           big_endian: bool = False, tsresol: int | None = None) -> bytes:
    """Each section: frames as (interface, ts, data); every section declares ``linktypes``."""
    o = ">" if big_endian else "<"
    out = []
    for frames in sections:
        out.append(_block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1)))
        for lt in linktypes:
            opts = b""
            if tsresol is not None:
                opts = struct.pack(o + "HH", 9, 1) + bytes([tsresol]) + b"\x00" * 3 + \
                    struct.pack(o + "HH", 0, 0)
            out.append(_block(o, 1, struct.pack(o + "HHI", lt, 0, 0) + opts))
        tick = 10 ** (tsresol or 6)
        for iface, ts, data in frames:
            t = round(ts * tick)
            out.append(_block(o, 6, struct.pack(o + "IIIII", iface, t >> 32, t & 0xFFFFFFFF,
                                                len(data), len(data)) + data))
    return b"".join(out)


# --- TLS messages ----------------------------------------------------------------------------

def handshake(mtype: int, body: bytes) -> bytes:
    return bytes([mtype]) + len(body).to_bytes(3, "big") + body


def records(payload: bytes, *, ctype: int = 22, size: int = 16384,
            version: int = 0x0303) -> bytes:
    """``payload`` cut into records of at most ``size`` bytes."""
    out = b""
    for i in range(0, len(payload), size):
        chunk = payload[i:i + size]
        out += struct.pack("!BHH", ctype, version, len(chunk)) + chunk
    return out


def ext(etype: int, data: bytes) -> bytes:
    return struct.pack("!HH", etype, len(data)) + data


def client_hello(*, sni: str | None = "example.com", ciphers: tuple[int, ...] = (0x1301, 0xC02F),
                 alpn: tuple[bytes, ...] = (b"h2",), extra: bytes = b"") -> bytes:
    exts = b""
    if sni is not None:
        name = sni.encode()
        exts += ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    if alpn:
        lst = b"".join(bytes([len(a)]) + a for a in alpn)
        exts += ext(16, struct.pack("!H", len(lst)) + lst)
    exts += ext(10, struct.pack("!HHH", 4, 0x001D, 0x0017))
    exts += ext(11, b"\x01\x00")
    exts += ext(13, struct.pack("!HHH", 4, 0x0403, 0x0804))
    exts += extra
    body = struct.pack("!H", 0x0303) + b"\x01" * 32 + b"\x00" + \
        struct.pack("!H", 2 * len(ciphers)) + struct.pack(f"!{len(ciphers)}H", *ciphers) + \
        b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    return handshake(1, body)


def server_hello(*, cipher: int = 0xC02F, version: int = 0x0303) -> bytes:
    exts = ext(0xFF01, b"\x00") + ext(11, b"\x01\x00")
    body = struct.pack("!H", version) + b"\x02" * 32 + b"\x00" + struct.pack("!H", cipher) + \
        b"\x00" + struct.pack("!H", len(exts)) + exts
    return handshake(2, body)


def certificate(ders: list[bytes]) -> bytes:
    lst = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    return handshake(11, len(lst).to_bytes(3, "big") + lst)


def tcp_flow(client_bytes: bytes, server_bytes: bytes, *, mss: int = 1460,
             client: tuple[str, int] = ("10.0.0.1", 40000),
             server: tuple[str, int] = ("10.0.0.2", 443), t0: float = 1_700_000_000.0,
             ) -> list[tuple[float, bytes]]:
    """A SYN handshake, the client's bytes, the server's bytes (segmented at ``mss``), FINs."""
    c, s = client, server
    cseq, sseq = 1000, 5000
    out = [ipv4_tcp(c[0], s[0], c[1], s[1], cseq, flags=0x02),
           ipv4_tcp(s[0], c[0], s[1], c[1], sseq, flags=0x12)]
    cseq += 1
    sseq += 1
    for i in range(0, len(client_bytes), mss):
        out.append(ipv4_tcp(c[0], s[0], c[1], s[1], cseq + i, client_bytes[i:i + mss]))
    for i in range(0, len(server_bytes), mss):
        out.append(ipv4_tcp(s[0], c[0], s[1], c[1], sseq + i, server_bytes[i:i + mss]))
    out.append(ipv4_tcp(c[0], s[0], c[1], s[1], cseq + len(client_bytes), flags=0x11))
    out.append(ipv4_tcp(s[0], c[0], s[1], c[1], sseq + len(server_bytes), flags=0x11))
    return [(t0 + i * 0.001, p) for i, p in enumerate(out)]
