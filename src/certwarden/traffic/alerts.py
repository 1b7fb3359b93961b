"""Detection over captured sessions: self-signed servers, unknown self-signed certificates,
abuse.ch SSLBL matches, and command-and-control heuristics — each alert with its evidence.

Rules are listed in ``RULES`` (stable ids); each is a plain function of a session and its
parsed leaf certificate.
"""

from __future__ import annotations

import csv
import datetime as dt
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from certwarden.errors import ParseError
from certwarden.records import Severity, frozen_map
from certwarden.traffic.session import TlsSession
from certwarden.x509 import Certificate, Kind


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    rule: str
    severity: Severity
    message: str
    flow: str
    capture: str
    certificate: str | None  # SHA-256 of the certificate concerned
    evidence: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", frozen_map(self.evidence))

    def as_dict(self) -> dict[str, object]:
        return {"type": "alert", "rule": self.rule, "severity": str(self.severity),
                "message": self.message, "capture": self.capture, "flow": self.flow,
                "certificate": self.certificate, "evidence": dict(self.evidence)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocklist:
    """abuse.ch SSLBL data: certificate SHA-1s and/or JA3 (or JA4) fingerprints -> reason."""

    sha1: Mapping[str, str] = field(default_factory=dict)
    fingerprints: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha1", frozen_map(self.sha1))
        object.__setattr__(self, "fingerprints", frozen_map(self.fingerprints))

    @classmethod
    def load(cls, paths: list[str]) -> Blocklist:
        sha1: dict[str, str] = {}
        fps: dict[str, str] = {}
        for path in paths:
            try:
                with open(path, encoding="utf-8", errors="replace", newline="") as fh:
                    _read_list(path, fh, sha1, fps)
            except OSError as exc:
                raise ParseError(path, exc.strerror or "cannot read") from None
        return cls(sha1=sha1, fingerprints=fps)


def _read_list(path: str, fh: Iterable[str], sha1: dict[str, str], fps: dict[str, str]) -> None:
    """SSLBL certificate CSV (``Listingdate,SHA1,Listingreason``), SSLBL JA3 CSV
    (``ja3_md5,Firstseen,Lastseen,Listingreason``) or ``fingerprint,label`` lines."""
    rows = 0
    for row in csv.reader(line for line in fh if not line.startswith("#")):
        if not row or not row[0].strip():
            continue
        cells = [c.strip() for c in row]
        if len(cells) >= 3 and re.fullmatch(r"[0-9a-fA-F]{40}", cells[1]):
            sha1[cells[1].lower()] = f"{cells[2]} (listed {cells[0]})"
        elif re.fullmatch(r"[0-9a-fA-F]{32}", cells[0]):
            fps[cells[0].lower()] = cells[-1] if len(cells) > 1 else "listed"
        elif re.fullmatch(r"[tqd][0-9a-z]{9}_[0-9a-f]{12}_[0-9a-f]{12}", cells[0]):
            fps[cells[0]] = cells[1] if len(cells) > 1 else "listed"
        else:
            continue
        rows += 1
    if rows == 0:
        raise ParseError(path, "no SHA-1 or JA3/JA4 fingerprints found (not an SSLBL list?)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    session: TlsSession
    leaf: Certificate | None
    chain: tuple[Certificate, ...]
    blocklist: Blocklist
    known: Callable[[str], bool] | None  # inventory lookup by SHA-256; None = no inventory


Rule = Callable[[Context], Iterator[Alert]]


def _alert(ctx: Context, rule: str, sev: Severity, msg: str, cert: Certificate | None,
           **evidence: str) -> Alert:
    s = ctx.session
    ev = {"server": f"{s.server}:{s.server_port}", **evidence}
    if s.sni:
        ev["sni"] = s.sni
    return Alert(rule=rule, severity=sev, message=msg, flow=s.flow, capture=s.capture,
                 certificate=cert.sha256 if cert else None, evidence=ev)


def self_signed_server(ctx: Context) -> Iterator[Alert]:
    leaf = ctx.leaf
    if leaf is not None and leaf.kind is Kind.SELF_SIGNED:
        yield _alert(ctx, "self-signed-server", Severity.MEDIUM,
                     f"server presented a self-signed certificate ({leaf.subject or 'empty'})",
                     leaf, subject=leaf.subject, kind=str(leaf.kind),
                     signature="verifies with its own key")


def unknown_self_signed(ctx: Context) -> Iterator[Alert]:
    leaf = ctx.leaf
    if leaf is None or leaf.kind is not Kind.SELF_SIGNED:
        return
    if ctx.known is not None and ctx.known(leaf.sha256):
        return
    yield _alert(ctx, "unknown-self-signed", Severity.HIGH,
                 "self-signed certificate not in the inventory", leaf, subject=leaf.subject,
                 sha256=leaf.sha256,
                 inventory="not registered" if ctx.known is not None else "no inventory in use")


def sslbl_match(ctx: Context) -> Iterator[Alert]:
    for cert in ctx.chain:
        reason = ctx.blocklist.sha1.get(cert.sha1)
        if reason:
            yield _alert(ctx, "sslbl-certificate", Severity.HIGH,
                         f"certificate listed by abuse.ch SSLBL: {reason}", cert,
                         sha1=cert.sha1, listing=reason)
    for name in ("ja3", "ja3s", "ja4", "ja4s"):
        value = getattr(ctx.session, name)
        if value and value in ctx.blocklist.fingerprints:
            yield _alert(ctx, "known-bad-fingerprint", Severity.HIGH,
                         f"{name.upper()} {value} is on a blocklist", None,
                         fingerprint=f"{name}={value}",
                         listing=ctx.blocklist.fingerprints[value])


# Values OpenSSL, Java keytool and C2 kits leave in place when nobody fills the subject in.
PLACEHOLDERS = {
    "internet widgits pty ltd": "OpenSSL's default organisation",
    "some-state": "OpenSSL's default state",
    "default company ltd": "OpenSSL's default organisation (RHEL)",
    "unknown": "keytool's 'Unknown' answer",
    "localhost": "localhost",
    "localhost.localdomain": "localhost",
    "example.com": "the documentation domain",
    "test": "'test'",
    "xx": "placeholder country XX",
    "acme co": "Go's test certificate organisation",
    "major cobalt strike": "Cobalt Strike's default certificate",
    "cobaltstrike": "Cobalt Strike's default certificate",
}
_ATTR = re.compile(r"(?:^|,)\s*([A-Za-z0-9.]+)=((?:[^,\\]|\\.)*)")


def placeholder_subject(ctx: Context) -> Iterator[Alert]:
    leaf = ctx.leaf
    if leaf is None:
        return
    for attr, value in _ATTR.findall(leaf.subject):
        why = PLACEHOLDERS.get(value.replace("\\", "").strip().lower())
        if why:
            yield _alert(ctx, "c2-placeholder-subject", Severity.MEDIUM,
                         f"placeholder subject {attr}={value} ({why})", leaf,
                         subject=leaf.subject, matched=f"{attr}={value}", reason=why)
            return


def _entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def random_subject(ctx: Context) -> Iterator[Alert]:
    """A CN (or its first DNS label) of 8+ letters/digits mixing both, with high entropy."""
    leaf = ctx.leaf
    if leaf is None or not leaf.subject_cn:
        return
    label = leaf.subject_cn.split(".")[0]
    if len(label) < 8 or not label.isalnum() or label.isdigit() or label.isalpha():
        return
    vowels = sum(ch in "aeiou" for ch in label.lower())
    ent = _entropy(label)
    if ent >= 3.0 and vowels / len(label) < 0.3:
        yield _alert(ctx, "c2-random-subject", Severity.LOW,
                     f"random-looking subject name {leaf.subject_cn!r}", leaf,
                     cn=leaf.subject_cn, entropy_bits_per_char=f"{ent:.2f}",
                     vowel_ratio=f"{vowels / len(label):.2f}")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def ip_or_empty_name(ctx: Context) -> Iterator[Alert]:
    leaf = ctx.leaf
    if leaf is None:
        return
    names = leaf.names
    if not names and not leaf.subject:
        yield _alert(ctx, "c2-empty-name", Severity.MEDIUM,
                     "certificate names nothing (empty subject, no SAN)", leaf, subject="")
    elif not leaf.sans.dns and names and all(_is_ip(n) for n in names):
        yield _alert(ctx, "c2-ip-only-name", Severity.LOW,
                     f"certificate names only IP addresses ({', '.join(names)})", leaf,
                     names=", ".join(names))
    elif not names:
        yield _alert(ctx, "c2-empty-name", Severity.MEDIUM,
                     "certificate has no CN and no SAN", leaf, subject=leaf.subject)


SHORT_DAYS = 2.0  # shorter than any CA issues (even 6-day certificates are longer)
LONG_DAYS = 3650.0  # a leaf valid for 10+ years was never meant to be rotated
OLD_NOT_BEFORE_DAYS = 3650.0  # notBefore 10+ years before it was seen: backdated


def odd_validity(ctx: Context) -> Iterator[Alert]:
    leaf = ctx.leaf
    if leaf is None or leaf.is_ca:
        return
    days = leaf.validity_days
    seen = dt.datetime.fromtimestamp(ctx.session.start, tz=dt.UTC)
    if days < SHORT_DAYS:
        yield _alert(ctx, "c2-odd-validity", Severity.LOW,
                     f"validity of {days:.2f} days is unusually short", leaf,
                     validity_days=f"{days:.2f}", threshold=f"< {SHORT_DAYS} days")
    elif days > LONG_DAYS:
        yield _alert(ctx, "c2-odd-validity", Severity.LOW,
                     f"validity of {days:.0f} days is unusually long", leaf,
                     validity_days=f"{days:.0f}", threshold=f"> {LONG_DAYS:.0f} days")
    age = (seen - leaf.not_before).total_seconds() / 86400
    if age > OLD_NOT_BEFORE_DAYS:
        yield _alert(ctx, "c2-old-not-before", Severity.LOW,
                     f"notBefore is {age:.0f} days before the session", leaf,
                     not_before=leaf.not_before.isoformat(), seen=seen.isoformat(),
                     threshold=f"> {OLD_NOT_BEFORE_DAYS:.0f} days")


RULES: tuple[tuple[str, Rule], ...] = (
    ("self-signed-server", self_signed_server),
    ("unknown-self-signed", unknown_self_signed),
    ("sslbl", sslbl_match),
    ("c2-placeholder-subject", placeholder_subject),
    ("c2-random-subject", random_subject),
    ("c2-ip-or-empty-name", ip_or_empty_name),
    ("c2-odd-validity", odd_validity),
)


def evaluate(ctx: Context) -> list[Alert]:
    out: list[Alert] = []
    for _rule_id, rule in RULES:
        out.extend(rule(ctx))
    return out
