"""JA4X: how a certificate was built (FoxIO License 1.1 — see NOTICE).

``ja4x(der)`` = three 12-hex SHA-256 prefixes over the hex DER contents of the issuer's
attribute OIDs, the subject's attribute OIDs and the extension OIDs, each comma-joined in
certificate order (empty list -> twelve zeros). A walk with ``x509.der`` rather than
cryptography's ``Name``: the order of attributes inside a multi-valued RDN must be the wire
order, and a certificate cryptography rejects still has a JA4X.
"""

from __future__ import annotations

import hashlib

from certwarden.errors import ParseError
from certwarden.x509.der import elements, tlv, tlv_within


def _name_oids(der: bytes, start: int, end: int) -> list[str]:
    oids = []
    for _t, s, e in elements(der, start, end):  # SET OF per RDN
        for _t2, s2, e2 in elements(der, s, e):  # AttributeTypeAndValue
            tag, os_, oe = tlv_within(der, s2, e2)
            if tag == 0x06:
                oids.append(der[os_:oe].hex())
    return oids


def ja4x_raw(der: bytes) -> str:
    """The unhashed JA4X (``ja4x_r``)."""
    try:
        _t, cs, ce = tlv(der, 0)
        _t, ts, te = tlv_within(der, cs, ce)  # tbsCertificate
        fields = elements(der, ts, te)
        i = 1 if fields and fields[0][0] == 0xA0 else 0  # explicit version
        # serial, signature, issuer, validity, subject, spki, then optional [1] [2] [3]
        issuer, subject = fields[i + 2], fields[i + 4]
        exts: list[str] = []
        for tag, s, e in fields[i + 6:]:
            if tag == 0xA3:
                _t, ls, le = tlv_within(der, s, e)
                for _t2, es, ee in elements(der, ls, le):
                    tag3, os_, oe = tlv_within(der, es, ee)
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
