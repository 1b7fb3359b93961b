"""JA4X: how a certificate was built (FoxIO License 1.1 — see NOTICE).

``ja4x(der)`` = three 12-hex SHA-256 prefixes over the hex DER contents of the issuer's
attribute OIDs, the subject's attribute OIDs and the extension OIDs, each comma-joined in
certificate order (empty list -> twelve zeros). A small DER walk of our own rather than
cryptography's ``Name``: the order of attributes inside a multi-valued RDN must be the wire
order, and a certificate cryptography rejects still has a JA4X.
"""

from __future__ import annotations

import hashlib

from certwarden.errors import ParseError


def _tlv(der: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the element at ``pos``."""
    if pos + 2 > end:
        raise ValueError("truncated")
    tag, first = der[pos], der[pos + 1]
    pos += 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > end:
            raise ValueError("bad length")
        length = int.from_bytes(der[pos:pos + n], "big")
        pos += n
    else:
        length = first
    if pos + length > end:
        raise ValueError("length past the end")
    return tag, pos, pos + length


def _children(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        t = _tlv(der, start, end)
        out.append(t)
        start = t[2]
    return out


def _name_oids(der: bytes, start: int, end: int) -> list[str]:
    oids = []
    for _t, s, e in _children(der, start, end):  # SET OF per RDN
        for _t2, s2, e2 in _children(der, s, e):  # AttributeTypeAndValue
            tag, os_, oe = _tlv(der, s2, e2)
            if tag == 0x06:
                oids.append(der[os_:oe].hex())
    return oids


def ja4x_raw(der: bytes) -> str:
    """The unhashed JA4X (``ja4x_r``)."""
    try:
        _t, cs, ce = _tlv(der, 0, len(der))
        _t, ts, te = _tlv(der, cs, ce)  # tbsCertificate
        fields = _children(der, ts, te)
        i = 1 if fields and fields[0][0] == 0xA0 else 0  # explicit version
        # serial, signature, issuer, validity, subject, spki, then optional [1] [2] [3]
        issuer, subject = fields[i + 2], fields[i + 4]
        exts: list[str] = []
        for tag, s, e in fields[i + 6:]:
            if tag == 0xA3:
                _t, ls, le = _tlv(der, s, e)
                for _t2, es, ee in _children(der, ls, le):
                    tag3, os_, oe = _tlv(der, es, ee)
                    if tag3 == 0x06:
                        exts.append(der[os_:oe].hex())
        parts = (_name_oids(der, issuer[1], issuer[2]), _name_oids(der, subject[1], subject[2]),
                 exts)
    except (ValueError, IndexError) as exc:
        raise ParseError("<certificate>", f"cannot compute JA4X ({exc})") from None
    return "_".join(",".join(p) for p in parts)


def _hash12(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:12] if s else "000000000000"


def ja4x(der: bytes) -> str:
    """The JA4X fingerprint of one DER certificate; raises ``ParseError`` on bad DER."""
    return "_".join(_hash12(p) for p in ja4x_raw(der).split("_"))
