"""The one DER reader and writer: every hand-made TLV in certwarden goes through here.

Reading slices what cryptography would otherwise materialise slowly or refuse: the raw issuer,
subject and SubjectPublicKeyInfo of a TBSCertificate (the self-issued test and the SPKI pin
cost a few microseconds), the wire-order walk JA4X needs, the outer length of a DER file.
Writing covers what cryptography cannot do: scrypt-encrypted PKCS#8, signatures by a key it
does not hold, and the deliberately broken certificates of the demo sandbox.

Lengths: definite form only, at most four length octets (4 GiB), as DER requires.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE, OCTET_STRING, INTEGER, BIT_STRING, OID, NULL = 0x30, 0x04, 0x02, 0x03, 0x06, 0x05


class DERError(ValueError):
    pass


class TruncatedError(DERError):
    """An element whose header is sound but whose value runs past the bytes given."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__("truncated DER: element overruns its container")
        self.start, self.end = start, end


# ---- reading -----------------------------------------------------------------------------

def tlv(buf: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at ``i``. The one length decoder."""
    if i + 2 > len(buf):
        raise DERError("truncated DER: short element")
    tag = buf[i]
    first = buf[i + 1]
    if first < 0x80:
        start, length = i + 2, first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or i + 2 + n > len(buf):
            raise DERError("bad DER length")
        start, length = i + 2 + n, int.from_bytes(buf[i + 2 : i + 2 + n], "big")
    end = start + length
    if end > len(buf):
        raise TruncatedError(start, end)
    return tag, start, end


def header(buf: bytes, i: int = 0) -> tuple[int, int, int]:
    """(tag, start of value, length of value) of the element at ``i``, checking the header
    only: the value may be cut short (a file truncated, a reply still arriving)."""
    try:
        tag, start, end = tlv(buf, i)
    except TruncatedError as cut:
        tag, start, end = buf[i], cut.start, cut.end
    return tag, start, end - start


def header_size(buf: bytes, i: int = 0) -> int:
    """Octets of tag and length at ``i``, known from the first two (for reading a stream)."""
    if i + 2 > len(buf):
        raise DERError("truncated DER: short element")
    first = buf[i + 1]
    if first < 0x80:
        return 2
    if not 0 < first - 0x80 <= 4:
        raise DERError("bad DER length")
    return 2 + first - 0x80


def tlv_within(buf: bytes, i: int, end: int) -> tuple[int, int, int]:
    """``tlv`` of the element at ``i``, which must lie before ``end`` (its container's end)."""
    t = tlv(buf, i)
    if t[2] > end:
        raise DERError("truncated DER: element overruns its container")
    return t


def elements(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """``tlv`` of each element between ``start`` and ``end`` (the value of a constructed one)."""
    out = []
    while start < end:
        t = tlv_within(buf, start, end)
        out.append(t)
        start = t[2]
    return out


def children(buf: bytes) -> list[bytes]:
    """The encoded children (whole TLVs) of the constructed TLV ``buf``."""
    _tag, i, end = tlv(buf, 0)
    out = []
    while i < end:
        e = tlv_within(buf, i, end)[2]
        out.append(buf[i:e])
        i = e
    return out


def content(buf: bytes) -> bytes:
    """The value of the TLV ``buf``."""
    _tag, start, end = tlv(buf, 0)
    return buf[start:end]


@dataclass(frozen=True, slots=True)
class TBSParts:
    issuer: bytes  # whole Name TLV
    subject: bytes
    spki: bytes  # whole SubjectPublicKeyInfo TLV


def tbs_of(cert_der: bytes) -> bytes:
    """The TBSCertificate TLV inside a Certificate, sliced (cryptography re-encodes it: slow)."""
    _t, start, _e = tlv(cert_der, 0)
    _t, _s, end = tlv(cert_der, start)
    return cert_der[start:end]


def tbs_parts(tbs: bytes) -> TBSParts:
    _tag, i, _end = tlv(tbs, 0)  # TBSCertificate SEQUENCE
    tag, _s, e = tlv(tbs, i)
    if tag == 0xA0:  # [0] EXPLICIT version
        i = e
    i = tlv(tbs, i)[2]  # serialNumber
    i = tlv(tbs, i)[2]  # signature AlgorithmIdentifier
    _t, _s, e = tlv(tbs, i)
    issuer = tbs[i:e]
    i = tlv(tbs, e)[2]  # validity
    _t, _s, e = tlv(tbs, i)
    subject = tbs[i:e]
    _t, _s, e2 = tlv(tbs, e)
    spki = tbs[e:e2]
    return TBSParts(issuer, subject, spki)


def name_atoms(name: bytes) -> list[tuple[bytes, bytes]]:
    """(OID, value) pairs of a Name, string tags dropped: UTF8String "a" == PrintableString "a".

    This is the equality cryptography's ``Name.__eq__`` applies (OID and value, not the
    string type), computed without building objects.
    """
    out: list[tuple[bytes, bytes]] = []
    _t, i, end = tlv(name, 0)
    while i < end:
        _t, rs, re_ = tlv(name, i)  # RDN SET
        j = rs
        while j < re_:
            _t, as_, ae = tlv(name, j)  # AttributeTypeAndValue SEQUENCE
            _t, os_, oe = tlv(name, as_)
            _t, vs, ve = tlv(name, oe)
            out.append((name[os_:oe], name[vs:ve]))
            j = ae
        i = re_
    return out


# ---- writing -----------------------------------------------------------------------------

def encode(tag: int, value: bytes) -> bytes:
    """One TLV: ``tag``, the definite length of ``value``, ``value``."""
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + value


def seq(*items: bytes) -> bytes:
    return encode(SEQUENCE, b"".join(items))


def octets(data: bytes) -> bytes:
    return encode(OCTET_STRING, data)


def integer(value: int) -> bytes:
    """DER INTEGER: minimal two's complement (negative values only for forged certificates)."""
    if value >= 0:
        return encode(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))
    return encode(INTEGER, value.to_bytes(((~value).bit_length() + 8) // 8, "big", signed=True))


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
    return encode(OID, bytes(body))


def bit_string(data: bytes) -> bytes:
    return encode(BIT_STRING, b"\x00" + data)
