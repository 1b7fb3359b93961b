"""Frame decoding: link layer -> IPv4/IPv6 -> TCP/UDP, by hand with ``struct`` (hot path).

Link types: Ethernet (VLAN / QinQ), Linux cooked SLL and SLL2, raw IPv4/IPv6, BSD
loopback/null. Tunnels seen in real captures are opened too: GRE (incl. ERSPAN II/III and
transparent Ethernet bridging), VXLAN and Geneve. A frame we cannot decode yields ``None``
(counted by the caller), never an exception.
"""

from __future__ import annotations

import struct

TCP, UDP = 6, 17

# (proto, src, dst, sport, dport, seq, tcp_flags, payload); addresses are raw bytes
Packet = tuple[int, bytes, bytes, int, int, int, int, bytes]

LINK_NULL, LINK_ETHERNET, LINK_RAW, LINK_RAW_BSD, LINK_RAW_OBSD = 0, 1, 101, 12, 14
LINK_LOOP, LINK_SLL, LINK_IPV4, LINK_IPV6, LINK_SLL2 = 108, 113, 228, 229, 276
LINK_PPP = 9

_VLAN = (0x8100, 0x88A8, 0x9100)
_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
_TCP = struct.Struct("!HHIIBB")
_MAX_TUNNEL_DEPTH = 4  # a frame nested deeper than this is a crafted loop, not traffic

SUPPORTED_LINKTYPES = frozenset({LINK_NULL, LINK_ETHERNET, LINK_RAW, LINK_RAW_BSD,
                                 LINK_RAW_OBSD, LINK_LOOP, LINK_SLL, LINK_IPV4, LINK_IPV6,
                                 LINK_SLL2, LINK_PPP})


def decode(linktype: int, data: bytes) -> Packet | None:
    """Decode one frame down to its transport segment, or ``None``."""
    try:
        if linktype == LINK_ETHERNET:
            # fast path: untagged Ethernet, IPv4 without options or fragments, TCP
            if data[12] == 8 and data[13] == 0 and data[14] == 0x45 and data[23] == TCP \
                    and not data[20] & 0x3F and not data[21]:
                total = (data[16] << 8) | data[17]
                sport, dport, seq, _ack, doff, flags = _TCP.unpack_from(data, 34)
                end = 14 + total if total >= 20 else len(data)
                return (TCP, data[26:30], data[30:34], sport, dport, seq, flags,
                        data[34 + (doff >> 4) * 4:end])
            return _ether(data, 0, 0)
        if linktype in (LINK_RAW, LINK_RAW_BSD, LINK_RAW_OBSD, LINK_IPV4, LINK_IPV6):
            return _ip(data, 0)
        if linktype == LINK_SLL:
            return _ethertype(_H.unpack_from(data, 14)[0], data, 16, 0)
        if linktype == LINK_SLL2:
            return _ethertype(_H.unpack_from(data, 0)[0], data, 20, 0)
        if linktype == LINK_PPP:  # optional ff 03 address/control, then the protocol
            off = 2 if data[:2] == b"\xff\x03" else 0
            proto = _H.unpack_from(data, off)[0]
            return _ip(data, off + 2) if proto in (0x0021, 0x0057) else None
        if linktype in (LINK_NULL, LINK_LOOP):
            return _ip(data, 4)  # the family word's byte order varies; the IP version nibble tells
    except (struct.error, IndexError):
        return None
    return None


def _ether(data: bytes, off: int, depth: int) -> Packet | None:
    etype = _H.unpack_from(data, off + 12)[0]
    off += 14
    while etype in _VLAN:
        etype = _H.unpack_from(data, off + 2)[0]
        off += 4
    return _ethertype(etype, data, off, depth)


def _ethertype(etype: int, data: bytes, off: int, depth: int) -> Packet | None:
    if etype in (0x0800, 0x86DD):
        return _ip(data, off, depth)
    if etype in _VLAN:
        return _ethertype(_H.unpack_from(data, off + 2)[0], data, off + 4, depth)
    return None


def _ip(data: bytes, off: int, depth: int = 0) -> Packet | None:
    v = data[off] >> 4
    if v == 4:
        ihl = (data[off] & 0x0F) * 4
        total = _H.unpack_from(data, off + 2)[0]
        frag = _H.unpack_from(data, off + 6)[0]
        if frag & 0x3FFF:  # a fragment (offset > 0 or more-fragments): not reassembled
            return None
        proto = data[off + 9]
        src, dst = data[off + 12:off + 16], data[off + 16:off + 20]
        end = off + total if total >= ihl else len(data)  # TSO captures write total=0
        off += ihl
    elif v == 6:
        proto = data[off + 6]
        plen = _H.unpack_from(data, off + 4)[0]
        src, dst = data[off + 8:off + 24], data[off + 24:off + 40]
        end = off + 40 + plen if plen else len(data)
        off += 40
        while proto in (0, 43, 60, 44):  # hop-by-hop, routing, destination options, fragment
            if proto == 44:
                if _H.unpack_from(data, off + 2)[0] & 0xFFF9:
                    return None  # a real fragment
                proto, off = data[off], off + 8
            else:
                proto, off = data[off], off + 8 + data[off + 1] * 8
    else:
        return None
    if proto == TCP:
        sport, dport, seq, _ack, doff, flags = _TCP.unpack_from(data, off)
        return TCP, src, dst, sport, dport, seq, flags, data[off + (doff >> 4) * 4:end]
    if proto == UDP:
        sport, dport = _HH.unpack_from(data, off)
        payload = data[off + 8:end]
        if depth < _MAX_TUNNEL_DEPTH and (dport in (4789, 6081) or sport in (4789, 6081)):
            inner = _udp_tunnel(dport if dport in (4789, 6081) else sport, payload, depth + 1)
            if inner is not None:
                return inner
        return UDP, src, dst, sport, dport, 0, 0, payload
    if proto == 47 and depth < _MAX_TUNNEL_DEPTH:
        return _gre(data[off:end], depth + 1)
    if proto in (4, 41) and depth < _MAX_TUNNEL_DEPTH:  # IP-in-IP, IPv6-in-IP
        return _ip(data[off:end], 0, depth + 1)
    return None


def _udp_tunnel(port: int, p: bytes, depth: int) -> Packet | None:
    try:
        if port == 4789 and len(p) > 22 and p[0] & 0x08:  # VXLAN with a valid VNI
            return _ether(p, 8, depth)
        if port == 6081 and len(p) > 8 and p[0] >> 6 == 0:  # Geneve version 0
            off = 8 + (p[0] & 0x3F) * 4
            return _tunnel_payload(_H.unpack_from(p, 2)[0], p, off, depth)
    except (struct.error, IndexError):
        return None
    return None


def _gre(p: bytes, depth: int) -> Packet | None:
    flags, ptype = _HH.unpack_from(p, 0)
    off = 4
    if flags & 0x8000:  # checksum present
        off += 4
    if flags & 0x2000:  # key
        off += 4
    seq_present = bool(flags & 0x1000)
    if seq_present:
        off += 4
    if ptype == 0x88BE:  # ERSPAN type II (type I has no sequence number and no header)
        return _ether(p, off + 8 if seq_present else off, depth)
    if ptype == 0x22EB:  # ERSPAN type III: 12 bytes, plus 8 when the O bit says so
        off += 12 + (8 if p[off + 11] & 0x01 else 0)
        return _ether(p, off, depth)
    return _tunnel_payload(ptype, p, off, depth)


def _tunnel_payload(ptype: int, p: bytes, off: int, depth: int) -> Packet | None:
    if ptype == 0x6558:  # transparent Ethernet bridging
        return _ether(p, off, depth)
    if ptype in (0x0800, 0x86DD):
        return _ip(p, off, depth)
    return None
