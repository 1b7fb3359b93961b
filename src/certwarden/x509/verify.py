"""Chain verification that names EVERY applicable problem, not just the first.

The verdict ``valid`` comes from cryptography's RFC 5280 / Web PKI path builder
(``cryptography.x509.verification``). That builder stops at the first error, so the problems
are diagnosed separately over the presented chain: an expired leaf under an unknown issuer
reports both ``expired`` and ``unknown-issuer``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import itertools
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509 as cx509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification as cv

from certwarden.errors import ParseError, UsageError
from certwarden.x509.parse import iter_files, read_source
from certwarden.x509.record import Certificate, Kind
from certwarden.x509.signature import signature_verifies

# Depth cap when we walk a chain ourselves; cryptography's own default is also 8.
DEFAULT_MAX_DEPTH = 8
WEAK_HASHES = frozenset({"md5", "sha1", "md2", "md4"})


class Problem(StrEnum):
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    SELF_SIGNED = "self-signed"
    UNKNOWN_ISSUER = "unknown-issuer"
    INCOMPLETE_CHAIN = "incomplete-chain"
    HOSTNAME_MISMATCH = "hostname-mismatch"
    BAD_SIGNATURE = "bad-signature"
    NOT_A_CA = "not-a-ca"
    PATH_TOO_LONG = "path-too-long"
    WEAK_SIGNATURE = "weak-signature"
    POLICY = "policy"  # anything else the RFC 5280 / Web PKI builder refused (see ``detail``)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyResult:
    valid: bool
    problems: tuple[Problem, ...]
    chain: tuple[Certificate, ...]  # leaf to anchor, as built (or as far as it got)
    detail: str | None = None  # the path builder's own reason when it refused

    def __bool__(self) -> bool:
        return self.valid


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Trust anchors: the system bundle, certifi, or a PEM file/directory of the user's."""

    anchors: tuple[Certificate, ...]
    name: str

    @classmethod
    def load(cls, spec: str) -> TrustStore:
        """``system``, ``certifi``, or a path to a PEM/DER file or a directory of them."""
        if spec == "certifi":
            import certifi

            return cls.from_paths([certifi.where()], name="certifi")
        if spec == "system":
            return cls.from_paths([_system_bundle()], name="system")
        if not os.path.exists(spec):
            raise UsageError(f"trust store {spec}: no such file or directory")
        return cls.from_paths([spec], name=spec)

    @classmethod
    def from_paths(cls, paths: Iterable[str], *, name: str) -> TrustStore:
        seen: dict[str, Certificate] = {}
        for root in paths:
            for path in iter_files(root):
                try:
                    parsed = read_source(path)
                except ParseError:
                    if os.path.isdir(root):
                        continue  # a README or hash symlink beside the anchors
                    raise
                for cert in parsed.certificates:
                    seen.setdefault(cert.sha256, cert)
        if not seen:
            raise UsageError(f"trust store {name}: no certificate in it")
        return cls(tuple(seen.values()), name)

    @classmethod
    def of(cls, anchors: Sequence[Certificate], *, name: str = "custom") -> TrustStore:
        return cls(tuple(anchors), name)


def _system_bundle() -> str:
    for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                      "/etc/ssl/cert.pem"):
        if os.path.exists(candidate):
            return candidate
    raise UsageError("no system trust bundle found (try --trust certifi)")


def verify_chain(leaf: Certificate, intermediates: Sequence[Certificate], store: TrustStore, *,
                 hostname: str | None = None, at: dt.datetime | None = None,
                 max_depth: int | None = None, client: bool = False) -> VerifyResult:
    """Verify ``leaf`` (+ the untrusted ``intermediates`` presented) against ``store``."""
    # RFC 5280 validity has one-second granularity: compare at that granularity.
    when = (at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    valid, detail, built = _builder_verdict(leaf, intermediates, store, hostname, when,
                                            max_depth, client)
    by_sha = {c.sha256: c for c in (leaf, *intermediates, *store.anchors)}
    path = ([by_sha[s] for s in built if s in by_sha] if built
            else _walk(leaf, intermediates, store, when))
    problems = _diagnose(leaf, path, store, hostname, when)
    if not valid and not any(p is not Problem.WEAK_SIGNATURE for p in problems):
        problems.append(_classify_detail(detail))
    if problems and detail is None and any(p is Problem.POLICY for p in problems):
        detail = "not conforming to RFC 5280 (see problems)"
    return VerifyResult(valid=valid and not _fatal(problems),
                        problems=tuple(dict.fromkeys(problems)), chain=tuple(path),
                        detail=detail)


def _diagnose(leaf: Certificate, path: list[Certificate], store: TrustStore,
              hostname: str | None, when: dt.datetime) -> list[Problem]:
    problems: list[Problem] = []
    anchors = {c.sha256 for c in store.anchors}
    top = path[-1]
    reached_anchor = top.sha256 in anchors or any(
        issued_by(top, a) for a in store.anchors if a.subject == top.issuer)
    if not reached_anchor and leaf.kind == Kind.SELF_SIGNED and len(path) == 1:
        problems.append(Problem.SELF_SIGNED)
    elif not reached_anchor:
        problems.append(Problem.UNKNOWN_ISSUER)
        if not top.self_issued:
            problems.append(Problem.INCOMPLETE_CHAIN)
    for cert in path:
        if cert.not_after < when:
            problems.append(Problem.EXPIRED)
        if cert.not_before > when:
            problems.append(Problem.NOT_YET_VALID)
    for child, parent in itertools.pairwise(path):
        if not issued_by(child, parent):
            problems.append(Problem.BAD_SIGNATURE)
        if not parent.is_ca:
            problems.append(Problem.NOT_A_CA)
        if child.sha256 not in anchors and child.signature_hash in WEAK_HASHES:
            problems.append(Problem.WEAK_SIGNATURE)
    if len(path) == 1 and leaf.sha256 not in anchors and leaf.signature_hash in WEAK_HASHES:
        problems.append(Problem.WEAK_SIGNATURE)
    if _path_len_violated(path):
        problems.append(Problem.PATH_TOO_LONG)
    if hostname and not matches_hostname(leaf, hostname):
        problems.append(Problem.HOSTNAME_MISMATCH)
    if _nonconforming(path):
        problems.append(Problem.POLICY)
    return problems


_NAME_CONSTRAINTS = "2.5.29.30"
_POLICY_CONSTRAINTS = "2.5.29.36"


def _nonconforming(path: list[Certificate]) -> bool:
    """RFC 5280 MUSTs the Web PKI builder does not enforce (x509-limbo's ``rfc5280`` cases)."""
    for i, cert in enumerate(path):
        if cert.serial <= 0 or cert.problems:
            return True  # §4.1.2.2 positive serial; a malformed extension
        if cert.is_ca and cert.subject_key_id is None:
            return True  # §4.2.1.2: SKI in every CA certificate
        if i > 0 and not cert.self_issued and cert.authority_key_id is None:
            return True  # §4.2.1.1: AKI in every certificate but a self-signed root
        for ext in cert.extensions:
            if ext.oid in (_NAME_CONSTRAINTS, _POLICY_CONSTRAINTS) and not ext.critical:
                return True  # §4.2.1.10 / §4.2.1.11: MUST be critical
    return False


def _fatal(problems: list[Problem]) -> bool:
    return any(p is not Problem.WEAK_SIGNATURE for p in problems)


def _classify_detail(detail: str | None) -> Problem:
    text = (detail or "").lower()
    if "path length" in text or "depth" in text:
        return Problem.PATH_TOO_LONG
    if "signature" in text:
        return Problem.BAD_SIGNATURE
    if "basicconstraints" in text or "not a ca" in text:
        return Problem.NOT_A_CA
    return Problem.POLICY


def _walk(leaf: Certificate, intermediates: Sequence[Certificate], store: TrustStore,
          when: dt.datetime) -> list[Certificate]:
    """Leaf upwards through presented intermediates and anchors, preferring a verified issuer."""
    pool = list(intermediates) + list(store.anchors)
    path = [leaf]
    seen = {leaf.sha256}
    anchors = {a.sha256 for a in store.anchors}
    while len(path) <= DEFAULT_MAX_DEPTH:
        cur = path[-1]
        if cur.sha256 in anchors or cur.kind == Kind.SELF_SIGNED:
            break
        candidates = [c for c in pool if c.subject == cur.issuer and c.sha256 not in seen]
        if not candidates:
            break
        verified = [c for c in candidates if issued_by(cur, c)] or candidates
        current = [c for c in verified if c.valid_at(when)] or verified
        nxt = next((c for c in current if c.sha256 in anchors), current[0])
        path.append(nxt)
        seen.add(nxt.sha256)
    return path


def _load(der: bytes) -> cx509.Certificate:
    with warnings.catch_warnings():
        # Already reported in ``Certificate.problems``; not worth a second warning here.
        warnings.simplefilter("ignore")
        return cx509.load_der_x509_certificate(der)


def issued_by(child: Certificate, parent: Certificate) -> bool:
    """Does ``parent``'s key verify ``child``'s signature? (SHA-1/MD5 included, on purpose.)"""
    loaded = _ISSUER_KEYS.get(parent.der)
    if loaded is None:
        try:
            parsed = _parsed(parent)
            loaded = (parsed, parsed.public_key())
        except (ValueError, UnsupportedAlgorithm):
            loaded = (None, None)
        if len(_ISSUER_KEYS) >= _ISSUER_KEYS_MAX:
            _ISSUER_KEYS.clear()
        _ISSUER_KEYS[parent.der] = loaded
    issuer, pub = loaded
    if issuer is None:
        return False
    return signature_verifies(_parsed(child), pub, issuer=issuer)


def _parsed(cert: Certificate) -> cx509.Certificate:
    # The record keeps the object it was parsed from (the same DER); re-parse only without it.
    x = cert._x  # same package: the object never leaves x509
    return x if isinstance(x, cx509.Certificate) else _load(cert.der)


# An estate has few issuers and each signs many leaves: parsing the issuer and loading its
# public key (10-30 us) once per issuer, not once per leaf, leaves only the signature check
# itself per leaf. Keyed by the DER (the key is a function of it); bounded, cleared when full.
_ISSUER_KEYS: dict[bytes, tuple[cx509.Certificate | None, object]] = {}
_ISSUER_KEYS_MAX = 4096


def _path_len_violated(path: list[Certificate]) -> bool:
    # Certificates below issuer i (excluding the leaf and self-issued ones) may not exceed
    # its pathLenConstraint (RFC 5280 §4.2.1.9).
    for i, issuer in enumerate(path):
        bc = issuer.basic_constraints
        if i == 0 or bc is None or bc.path_length is None:
            continue
        below = [c for c in path[1:i] if not c.self_issued]
        if len(below) > bc.path_length:
            return True
    return False


def matches_hostname(cert: Certificate, hostname: str) -> bool:
    """RFC 6125 matching: SAN DNS (one left-most wildcard label) or SAN IP; CN only without SAN."""
    host = hostname.rstrip(".").lower()
    ip = _ip_or_none(host.strip("[]"))
    if ip is not None:
        return any(_same_ip(ip, v) for v in cert.sans.ip)
    names = cert.sans.dns if (cert.sans.dns or cert.sans.ip) else (
        (cert.subject_cn,) if cert.subject_cn else ())
    return any(_dns_match(n.lower().rstrip("."), host) for n in names)


_IPV4_CHARS = frozenset("0123456789.")


def _ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # An IPv4 address is digits and dots, an IPv6 one has a colon: anything else is a DNS
    # name, known without paying for ``ip_address``'s exception (most hosts are names).
    if ":" not in text and not _IPV4_CHARS.issuperset(text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _same_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str) -> bool:
    try:
        return ipaddress.ip_address(text) == ip
    except ValueError:
        return False


def _dns_match(pattern: str, host: str) -> bool:
    if pattern == host:
        return True
    if not pattern.startswith("*.") or "*" in pattern[1:]:
        return False
    suffix = pattern[1:]  # ".example.com"
    if suffix.count(".") < 2:
        return False  # "*.com" matches nothing
    head, dot, rest = host.partition(".")
    return bool(head) and bool(dot) and "." + rest == suffix


def _builder_verdict(leaf: Certificate, intermediates: Sequence[Certificate], store: TrustStore,
                     hostname: str | None, when: dt.datetime, max_depth: int | None,
                     client: bool) -> tuple[bool, str | None, list[str]]:
    try:
        builder = cv.PolicyBuilder().store(
            cv.Store([_load(a.der) for a in store.anchors])
        ).time(when)
        if max_depth is not None:
            builder = builder.max_chain_depth(max_depth)
        peer = _load(leaf.der)
        inters = [_load(c.der) for c in intermediates]
        if client or not hostname:
            builder = builder.extension_policies(
                ca_policy=cv.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=_ee_policy_any_eku(client))
            chain = builder.build_client_verifier().verify(peer, inters).chain
        else:
            chain = builder.build_server_verifier(_subject(hostname)).verify(peer, inters)
    except cv.VerificationError as exc:
        return False, " ".join(str(exc).split())[:300], []
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return False, " ".join(str(exc).split())[:300], []
    return True, None, [hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in chain]


def _ee_policy_any_eku(client: bool) -> cv.ExtensionPolicy:
    # Without a hostname we check the path, not the purpose: accept serverAuth leaves too.
    if client:
        return cv.ExtensionPolicy.webpki_defaults_ee()
    return cv.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        cx509.ExtendedKeyUsage, cv.Criticality.AGNOSTIC, None)


def _subject(hostname: str) -> cx509.DNSName | cx509.IPAddress:
    try:
        return cx509.IPAddress(ipaddress.ip_address(hostname.strip("[]")))
    except ValueError:
        return cx509.DNSName(hostname)
