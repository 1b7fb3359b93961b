"""Subject names a certificate may carry: DNS names, IP addresses, URIs (SPIFFE IDs)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509

from certwarden.ca.errors import RequestRefused

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# SPIFFE ID (spiffe/standards SPIFFE-ID.md §2): trust domain of [a-z0-9.-_], path segments
# of [A-Za-z0-9.-_], no empty, "." or ".." segment, no trailing slash, no query/fragment.
_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


class NameKind(StrEnum):
    DNS = "dns"
    IP = "ip"
    URI = "uri"


@dataclass(frozen=True, slots=True, kw_only=True)
class Name:
    kind: NameKind
    value: str

    def __str__(self) -> str:
        return self.value

    def general_name(self) -> x509.GeneralName:
        if self.kind is NameKind.DNS:
            return x509.DNSName(self.value)
        if self.kind is NameKind.IP:
            return x509.IPAddress(ipaddress.ip_address(self.value))
        return x509.UniformResourceIdentifier(self.value)


def parse_name(text: str) -> Name:
    """Classify and validate one requested name; refuse what no certificate should carry."""
    raw = text.strip()
    for prefix in ("DNS:", "IP:", "URI:"):
        if raw.upper().startswith(prefix):
            raw = raw[len(prefix):]
    if "://" in raw:
        if raw.lower().startswith("spiffe://"):
            spiffe_id(raw)
        return Name(kind=NameKind.URI, value=raw)
    if ":" in raw or raw[-1:].isdigit():  # only these can be IPs: skip a costly exception
        try:
            return Name(kind=NameKind.IP, value=str(ipaddress.ip_address(raw)))
        except ValueError:
            pass
    dns = raw.lower().rstrip(".")
    labels = dns.split(".")
    body = labels[1:] if labels[0] == "*" else labels
    if not dns or len(dns) > 253 or not body or not all(_LABEL.match(lbl) for lbl in body):
        raise RequestRefused(f"{text!r} is not a valid DNS name", rule="name-syntax")
    return Name(kind=NameKind.DNS, value=dns)


def spiffe_id(uri: str) -> tuple[str, str]:
    """(trust domain, path) of a valid SPIFFE ID, or ``RequestRefused`` saying which rule."""
    def refuse(why: str) -> RequestRefused:
        return RequestRefused(f"{uri!r} is not a SPIFFE ID: {why}", rule="spiffe-id")

    if not uri.startswith("spiffe://"):
        raise refuse("scheme must be lowercase 'spiffe'")
    if len(uri.encode()) > 2048:
        raise refuse("longer than 2048 bytes")
    if "?" in uri or "#" in uri:
        raise refuse("query and fragment are not allowed")
    rest = uri[len("spiffe://"):]
    domain, slash, path = rest.partition("/")
    if not domain:
        raise refuse("trust domain is empty")
    if len(domain) > 255 or not _TRUST_DOMAIN.match(domain):
        raise refuse("trust domain may hold only lowercase letters, digits, '.', '-', '_' "
                     "(no port, no user info)")
    if slash:
        if path == "" or path.endswith("/"):
            raise refuse("path must not end with '/'")
        for seg in path.split("/"):
            if seg in ("", ".", "..") or not _SEGMENT.match(seg):
                raise refuse(f"bad path segment {seg!r}")
    return domain, ("/" + path if slash else "")
