"""CA/Browser Forum Baseline Requirements (TLS BR 2.x) checks that the path builder skips.

cryptography's verifier accepts a leaf without EKU, an RSA modulus of 2,047 bits, a wildcard
under ``co.uk`` and a CN written ``010.000.000.001``; browsers and the BRs do not. Each check
here names its BR section in the message, so a finding reads on its own.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterator

from publicsuffixlist import PublicSuffixList

from certwarden.assess.finding import Hit
from certwarden.assess.target import Target
from certwarden.x509 import Kind

_SELF_SIGNED = Kind.SELF_SIGNED
# cryptography has no name for anyExtendedKeyUsage (RFC 5280 §4.2.1.12): the record keeps the OID.
ANY_EKU = frozenset({"anyExtendedKeyUsage", "2.5.29.37.0"})
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Every spelling inet_aton(3) reads as IPv4: 1-4 parts, decimal, octal (leading 0) or hex.
_IPV4_ANY = re.compile(r"(?:0x[0-9a-f]*|\d+)(?:\.(?:0x[0-9a-f]*|\d+)){0,3}", re.IGNORECASE)


def _br_leaf(t: Target) -> bool:
    """An end-entity certificate in use as one (a CA served as leaf has its own rule)."""
    c = t.certificate
    return t.in_use_as_leaf and not c.is_ca and c.version == 3  # v1: v1-certificate says it


def leaf_eku(t: Target) -> Iterator[Hit]:
    if not _br_leaf(t):
        return
    eku = t.certificate.extended_key_usage
    if not eku:
        yield Hit(message="no extendedKeyUsage: a TLS server certificate MUST carry serverAuth "
                          "(BR §7.1.2.7.10)", evidence={"extended_key_usage": "(absent)"})
    elif ANY_EKU.intersection(eku):
        yield Hit(message="anyExtendedKeyUsage MUST NOT be present in a subscriber certificate "
                          "(BR §7.1.2.7.10)", evidence={"extended_key_usage": ", ".join(eku)})
    elif t.served and "serverAuth" not in eku:
        # What a verifier checking the purpose refuses: "required EKU not found".
        yield Hit(message=f"served for TLS, but its extendedKeyUsage ({', '.join(eku)}) lacks "
                          "serverAuth: clients refuse it (BR §7.1.2.7.10)",
                  evidence={"extended_key_usage": ", ".join(eku)})


def root_profile(t: Target) -> Iterator[Hit]:
    c = t.certificate
    if not c.is_ca or c.kind != _SELF_SIGNED:
        return
    reasons = []
    if c.extended_key_usage:
        reasons.append(f"it carries extendedKeyUsage ({', '.join(c.extended_key_usage)}), "
                       "which a root MUST NOT (BR §7.1.2.1.2)")
    if c.aki_issuer_serial:
        reasons.append("its authorityKeyIdentifier names authorityCertIssuer/"
                       "authorityCertSerialNumber, which a root MUST NOT (BR §7.1.2.1.3)")
    if reasons:
        yield Hit(message="root CA certificate: " + "; ".join(reasons),
                  evidence={"subject": c.subject or "(empty)",
                            "extended_key_usage": ", ".join(c.extended_key_usage) or "(absent)",
                            "aki_issuer_serial": str(c.aki_issuer_serial).lower()})


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # The list ships inside the package (no download); parsed once, on first use.
    return PublicSuffixList()


def is_public_suffix(name: str) -> bool:
    """``co.uk``, ``github.io``, ``com`` ... (an unknown TLD counts as public, as browsers do)."""
    return bool(_public_suffixes().is_public(name.rstrip(".").lower()))


def wildcard_public_suffix(t: Target) -> Iterator[Hit]:
    c = t.certificate
    if c.is_ca:
        return
    dns = c.sans.dns
    names = [n for n in dns if n.startswith("*.")]
    if not dns and c.subject_cn and c.subject_cn.startswith("*."):
        names = [c.subject_cn]
    bad = [n for n in names if is_public_suffix(n[2:])]
    if bad:
        yield Hit(message=f"wildcard directly under a public suffix: {', '.join(bad)} "
                          "(BR §3.2.2.6: a CA MUST refuse it)",
                  evidence={"names": ", ".join(bad)})


def ip_value(text: str) -> IpAddress | None:
    """The address ``text`` denotes in ANY spelling a resolver accepts, or None."""
    host = text.strip().strip("[]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    if not _IPV4_ANY.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def ip_name_form(t: Target) -> Iterator[Hit]:
    c = t.certificate
    if c.is_ca:
        return
    problems = []
    for name in c.sans.dns:
        ip = ip_value(name)
        if ip is not None:
            problems.append(f"dNSName {name} is an IP address ({ip}); it belongs in an "
                            "iPAddress SAN (BR §7.1.2.7.12)")
    for text in c.sans.ip:
        if "/" in text:
            problems.append(f"iPAddress SAN {text} carries a netmask (8 or 32 octets), not an "
                            "address (BR §7.1.2.7.12)")
            continue
        ip6 = ipaddress.ip_address(text)
        if isinstance(ip6, ipaddress.IPv6Address) and ip6.ipv4_mapped is not None:
            problems.append(f"iPAddress SAN {text} is the IPv4 address {ip6.ipv4_mapped} "
                            "written as 16 octets; write it as 4 (BR §7.1.2.7.12)")
    cn = c.subject_cn
    ip = ip_value(cn) if cn else None
    if cn and ip is not None and cn != str(ip):
        problems.append(f"CN={cn} is not the canonical form {ip} (BR §7.1.4.3: RFC 3986 "
                        "§3.2.2 for IPv4, RFC 5952 §4 for IPv6)")
    if problems:
        yield Hit(message="IP address in a non-canonical form: " + "; ".join(problems),
                  evidence={"dns": ", ".join(c.sans.dns), "ip": ", ".join(c.sans.ip),
                            "cn": cn or ""})
