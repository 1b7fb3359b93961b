"""Just enough DER to slice a TBSCertificate: the raw issuer, subject and SubjectPublicKeyInfo.

Used on the hot path so that "is this self-issued?" and the SPKI pin cost a few microseconds
instead of materialising Name and key objects.
"""

from __future__ import annotations

from dataclasses import dataclass


class DERError(ValueError):
    pass


def tlv(buf: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at ``i``."""
    if i + 2 > len(buf):
        raise DERError("short element")
    tag = buf[i]
    first = buf[i + 1]
    if first < 0x80:
        start, length = i + 2, first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or i + 2 + n > len(buf):
            raise DERError("bad length")
        start, length = i + 2 + n, int.from_bytes(buf[i + 2 : i + 2 + n], "big")
    end = start + length
    if end > len(buf):
        raise DERError("element overruns its container")
    return tag, start, end


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


def spki_key_bits(spki: bytes) -> bytes:
    """The subjectPublicKey BIT STRING contents of a SubjectPublicKeyInfo, without the
    unused-bits octet: what an OCSP CertID's issuerKeyHash is taken over (RFC 6960 §4.1.1)."""
    _t, i, _end = tlv(spki, 0)
    i = tlv(spki, i)[2]  # algorithm
    tag, start, end = tlv(spki, i)
    if tag != 0x03 or end <= start:
        raise DERError("no BIT STRING in SubjectPublicKeyInfo")
    return spki[start + 1 : end]
