"""Client and server fingerprints: JA3/JA3S (Salesforce, BSD-3), JA4 (FoxIO, BSD-3) and
JA4S (FoxIO License 1.1 — see NOTICE; callers may turn it off with ``ja4plus=False``).

JA4/JA4S follow FoxIO's Rust reference implementation where the specification leaves room
(the ALPN characters of a non-ASCII protocol id are '9'; a one-character id gives '0' as
its last character; signature algorithms are kept in wire order, GREASE included).
"""

from __future__ import annotations

import hashlib

from certwarden.traffic._ciphers import CIPHER_NAMES
from certwarden.traffic.tls import (
    EXT_ALPN,
    EXT_QUIC_PARAMS,
    EXT_SNI,
    EXT_SUPPORTED_VERSIONS,
    GREASE,
    ClientHello,
    ServerHello,
)

_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                 0x0002: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}
_VERSION_NAMES = {0x0002: "SSLv2", 0x0300: "SSLv3", 0x0301: "TLSv10", 0x0302: "TLSv11",
                  0x0303: "TLSv12", 0x0304: "TLSv13", 0xFEFF: "DTLSv10", 0xFEFD: "DTLSv12",
                  0xFEFC: "DTLSv13"}


def version_name(v: int) -> str:
    """Zeek's spelling: TLSv12, DTLSv10, TLSv13-draft23, unknown-N."""
    if v in _VERSION_NAMES:
        return _VERSION_NAMES[v]
    if v >> 8 == 0x7F:
        return f"TLSv13-draft{v & 0xFF}"
    return f"unknown-{v}"


def cipher_name(c: int, *, sslv2: bool = False) -> str:
    if sslv2:
        return _SSLV2_CIPHERS.get(c, f"SSLv2-0x{c:06x}")
    return CIPHER_NAMES.get(c, f"0x{c:04x}")


_SSLV2_CIPHERS = {0x010080: "SSLv20_CK_RC4_128_WITH_MD5",
                  0x020080: "SSLv20_CK_RC4_128_EXPORT40_WITH_MD5",
                  0x030080: "SSLv20_CK_RC2_128_CBC_WITH_MD5",
                  0x040080: "SSLv20_CK_RC2_128_CBC_EXPORT40_WITH_MD5",
                  0x050080: "SSLv20_CK_IDEA_128_CBC_WITH_MD5",
                  0x060040: "SSLv20_CK_DES_64_CBC_WITH_MD5",
                  0x0700C0: "SSLv20_CK_DES_192_EDE3_CBC_WITH_MD5"}


def _dash(values: tuple[int, ...] | list[int]) -> str:
    return "-".join(str(v) for v in values)


def ja3_string(ch: ClientHello) -> str:
    return ",".join((
        str(ch.version),
        _dash([c for c in ch.ciphers if c not in GREASE]),
        _dash([e for e in ch.extensions if e not in GREASE]),
        _dash([g for g in ch.groups if g not in GREASE]),
        _dash(ch.point_formats),
    ))


def ja3(ch: ClientHello) -> str | None:
    if ch.sslv2:
        return None  # JA3 is defined over SSLv3/TLS ClientHellos only
    return hashlib.md5(ja3_string(ch).encode(), usedforsecurity=False).hexdigest()


def ja3s(sh: ServerHello) -> str | None:
    if sh.sslv2:
        return None
    s = f"{sh.version},{sh.cipher},{_dash(sh.extensions)}"
    return hashlib.md5(s.encode(), usedforsecurity=False).hexdigest()


def hash12(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:12] if s else "000000000000"


def _alpn_chars(alpn: bytes | None) -> str:
    if not alpn:
        return "00"
    text = alpn.decode("utf-8", "replace")
    first = text[0] if text[0].isascii() else "9"
    last = (text[-1] if text[-1].isascii() else "9") if len(text) > 1 else "0"
    return first + last


def _ja4_version(v: int) -> str:
    return _JA4_VERSIONS.get(v, "00")


def ja4(ch: ClientHello, *, dtls: bool = False, raw: bool = False) -> str:
    """JA4 of a ClientHello (sorted form); ``raw`` gives JA4_r (the unhashed lists)."""
    hashed, unhashed = ja4_both(ch, dtls=dtls)
    return unhashed if raw else hashed


def ja4_both(ch: ClientHello, *, dtls: bool = False) -> tuple[str, str]:
    """(JA4, JA4_r) in one pass."""
    if EXT_SUPPORTED_VERSIONS in ch.extensions and ch.supported_versions:
        version = max(v for v in ch.supported_versions if v not in GREASE) \
            if any(v not in GREASE for v in ch.supported_versions) else 0
    else:
        version = ch.version
    proto = "d" if dtls else ("q" if EXT_QUIC_PARAMS in ch.extensions else "t")
    ciphers = sorted(f"{c:04x}" for c in ch.ciphers if c not in GREASE)
    exts = [e for e in ch.extensions if e not in GREASE]
    head = (f"{proto}{_ja4_version(version)}{'d' if EXT_SNI in exts else 'i'}"
            f"{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}"
            f"{_alpn_chars(ch.alpn[0] if ch.alpn else None)}")
    ext_list = ",".join(sorted(f"{e:04x}" for e in exts if e not in (EXT_SNI, EXT_ALPN)))
    sigs = ",".join(f"{s:04x}" for s in ch.sig_algs)
    c_part = ext_list + ("_" + sigs if sigs else "")
    cipher_list = ",".join(ciphers)
    return (f"{head}_{hash12(cipher_list)}_{hash12(c_part)}",
            f"{head}_{cipher_list}_{c_part}")


def ja4s(sh: ServerHello, *, quic: bool = False, dtls: bool = False) -> str:
    """JA4S of a ServerHello (FoxIO License 1.1)."""
    version = sh.selected_version if (EXT_SUPPORTED_VERSIONS in sh.extensions
                                      and sh.selected_version is not None) else sh.version
    proto = "d" if dtls else ("q" if quic else "t")
    exts = ",".join(f"{e:04x}" for e in sh.extensions)
    return (f"{proto}{_ja4_version(version)}{min(len(sh.extensions), 99):02d}"
            f"{_alpn_chars(sh.alpn)}_{sh.cipher:04x}_{hash12(exts)}")
