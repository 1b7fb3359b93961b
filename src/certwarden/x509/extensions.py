"""A certificate's extensions, decoded into plain values: SANs, basic constraints, key usage.

``Certificate`` (``record.py``) decodes them on first use through ``read_extensions``. One
malformed extension is kept in the listing and named in ``problems``; the others still read.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from cryptography import x509 as cx509

from certwarden.errors import one_line


@dataclass(frozen=True, slots=True, kw_only=True)
class SubjectAltNames:
    dns: tuple[str, ...] = ()
    ip: tuple[str, ...] = ()
    uri: tuple[str, ...] = ()
    email: tuple[str, ...] = ()
    other: tuple[str, ...] = ()  # directory names, registered IDs, otherName OIDs

    def __bool__(self) -> bool:
        return bool(self.dns or self.ip or self.uri or self.email or self.other)

    def as_dict(self) -> dict[str, list[str]]:
        return {"dns": list(self.dns), "ip": list(self.ip), "uri": list(self.uri),
                "email": list(self.email), "other": list(self.other)}


@dataclass(frozen=True, slots=True, kw_only=True)
class BasicConstraints:
    ca: bool
    path_length: int | None
    critical: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Extension:
    oid: str
    name: str
    critical: bool


@dataclass(slots=True)
class Extensions:
    """What ``read_extensions`` found; filled in as it reads (the record keeps it, unexposed)."""

    problems: tuple[str, ...] = ()
    sans: SubjectAltNames = field(default_factory=SubjectAltNames)
    basic_constraints: BasicConstraints | None = None
    key_usage: tuple[str, ...] = ()
    eku: tuple[str, ...] = ()
    ski: str | None = None
    aki: str | None = None
    extensions: tuple[Extension, ...] = ()


_KU_FIELDS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
              "key_agreement", "key_cert_sign", "crl_sign")


def read_extensions(cert: cx509.Certificate, problems: list[str]) -> Extensions:
    out = Extensions()
    try:
        exts = cert.extensions
    except Exception as exc:
        # Duplicate or malformed extensions: keep everything else, say what went wrong.
        problems.append(f"extensions: {one_line(exc)}")
        return out
    listed: list[Extension] = []
    for ext in exts:
        oid = ext.oid
        name = getattr(oid, "_name", "Unknown OID")
        listed.append(Extension(oid=oid.dotted_string,
                                name=oid.dotted_string if name == "Unknown OID" else name,
                                critical=ext.critical))
        try:
            _read_extension(out, ext)
        except (ValueError, TypeError, UnicodeError) as exc:
            # One malformed extension value (a bad name inside a SAN ...): skip it, say so.
            problems.append(f"extension {oid.dotted_string}: {one_line(exc)}")
    out.extensions = tuple(listed)
    return out


def _read_extension(out: Extensions, ext: cx509.Extension[cx509.ExtensionType]) -> None:
    value = ext.value
    if isinstance(value, cx509.SubjectAlternativeName):
        out.sans = _sans(value)
    elif isinstance(value, cx509.BasicConstraints):
        out.basic_constraints = BasicConstraints(ca=value.ca, path_length=value.path_length,
                                                 critical=ext.critical)
    elif isinstance(value, cx509.KeyUsage):
        out.key_usage = _key_usage(value)
    elif isinstance(value, cx509.ExtendedKeyUsage):
        out.eku = tuple(oid_name(o) for o in value)
    elif isinstance(value, cx509.SubjectKeyIdentifier):
        out.ski = value.digest.hex()
    elif isinstance(value, cx509.AuthorityKeyIdentifier) and value.key_identifier:
        out.aki = value.key_identifier.hex()


def oid_name(oid: cx509.ObjectIdentifier) -> str:
    """cryptography's name for an OID, else its dotted form."""
    name = getattr(oid, "_name", "Unknown OID")
    return oid.dotted_string if name == "Unknown OID" else str(name)


def _key_usage(ku: cx509.KeyUsage) -> tuple[str, ...]:
    names = [f for f in _KU_FIELDS if getattr(ku, f)]
    if ku.key_agreement:
        # encipher_only / decipher_only raise unless key_agreement is set.
        if ku.encipher_only:
            names.append("encipher_only")
        if ku.decipher_only:
            names.append("decipher_only")
    return tuple(names)


def _sans(san: cx509.SubjectAlternativeName) -> SubjectAltNames:
    dns: list[str] = []
    ips: list[str] = []
    uris: list[str] = []
    emails: list[str] = []
    other: list[str] = []
    for gn in san:
        if isinstance(gn, cx509.DNSName):
            dns.append(gn.value)
        elif isinstance(gn, cx509.IPAddress):
            v = gn.value
            ips.append(str(v) if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address)
                       else v.with_prefixlen)
        elif isinstance(gn, cx509.UniformResourceIdentifier):
            uris.append(gn.value)
        elif isinstance(gn, cx509.RFC822Name):
            emails.append(gn.value)
        elif isinstance(gn, cx509.DirectoryName):
            other.append("dirname:" + gn.value.rfc4514_string())
        elif isinstance(gn, cx509.RegisteredID):
            other.append("rid:" + gn.value.dotted_string)
        elif isinstance(gn, cx509.OtherName):
            other.append("othername:" + gn.type_id.dotted_string)
    return SubjectAltNames(dns=tuple(dns), ip=tuple(ips), uri=tuple(uris), email=tuple(emails),
                           other=tuple(other))
