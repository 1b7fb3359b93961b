"""The little DER we write by hand: scrypt-encrypted PKCS#8 and re-signed structures.

cryptography builds every TBS structure for us; what it cannot do is encrypt PKCS#8 with
scrypt, or sign with a key it does not hold. Both need only a few TLVs, kept here.
"""

from __future__ import annotations

SEQUENCE, OCTET_STRING, INTEGER, BIT_STRING, OID, NULL = 0x30, 0x04, 0x02, 0x03, 0x06, 0x05


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def seq(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def octets(data: bytes) -> bytes:
    return tlv(OCTET_STRING, data)


def integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers are encoded here")
    return tlv(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([arcs[0] * 40 + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(OID, bytes(body))


def bit_string(data: bytes) -> bytes:
    return tlv(BIT_STRING, b"\x00" + data)


def header(buf: bytes, off: int = 0) -> tuple[int, int, int]:
    """(tag, offset of content, content length) of the TLV at ``off``."""
    if off + 2 > len(buf):
        raise ValueError("truncated DER")
    tag, first = buf[off], buf[off + 1]
    if first < 0x80:
        return tag, off + 2, first
    n = first & 0x7F
    if n == 0 or n > 4 or off + 2 + n > len(buf):
        raise ValueError("unsupported DER length")
    length = int.from_bytes(buf[off + 2:off + 2 + n], "big")
    if off + 2 + n + length > len(buf):
        raise ValueError("truncated DER")
    return tag, off + 2 + n, length


def children(buf: bytes) -> list[bytes]:
    """The encoded children (whole TLVs) of the constructed TLV ``buf``."""
    _tag, start, length = header(buf)
    out, off, end = [], start, start + length
    while off < end:
        _t, cstart, clen = header(buf, off)
        out.append(buf[off:cstart + clen])
        off = cstart + clen
    return out


def content(buf: bytes) -> bytes:
    _tag, start, length = header(buf)
    return buf[start:start + length]
