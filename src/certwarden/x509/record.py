"""The ``Certificate`` record: one parsed certificate, built once from its DER.

cryptography's objects are read here and converted to plain values; they never leave this
module. Parsing is lenient where the real world is sloppy (a malformed extension is kept as
raw bytes and named in ``problems``) and strict where a wrong answer would mislead (``kind``
is decided by the signature, never by comparing names alone).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from cryptography import x509 as cx509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from certwarden.errors import ParseError, one_line
from certwarden.x509.der import name_atoms, tbs_of, tbs_parts
from certwarden.x509.extensions import (
    BasicConstraints,
    Extension,
    Extensions,
    SubjectAltNames,
    read_extensions,
)
from certwarden.x509.signature import signature_hash, signature_name, signature_verifies


class Kind(StrEnum):
    """How a certificate relates to its issuer, decided by signature (not by name)."""

    SELF_SIGNED = "self-signed"  # subject == issuer and its own key verifies the signature
    SELF_ISSUED = "self-issued"  # subject == issuer, but its own key does not verify it
    ISSUED = "issued"


class KeyType(StrEnum):
    RSA = "rsa"
    EC = "ec"
    ED25519 = "ed25519"
    ED448 = "ed448"
    DSA = "dsa"
    ML_DSA = "ml-dsa"  # FIPS 204; ``curve`` names the parameter set
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicKeyInfo:
    type: KeyType
    bits: int  # modulus / field size; 0 when unknown
    curve: str | None = None  # e.g. "secp256r1"


@dataclass(frozen=True, kw_only=True, eq=False)
class Certificate:
    """One certificate. Equality and hashing are by SHA-256 of the DER.

    What every consumer needs (fingerprints, validity, serial, ``kind``) is computed when the
    record is built; names, SANs and extensions are decoded on first use and then kept
    (``cached_property``): parsing a million certificates should not pay for rendering a
    million distinguished names nobody reads. Build with ``Certificate.from_der``.
    """

    der: bytes = field(repr=False)
    sha256: str  # hex, lowercase
    sha1: str
    spki_sha256: str  # base64 of SHA-256 over SubjectPublicKeyInfo (HPKP / pinning form)
    serial: int
    version: int  # 1 or 3 (as humans count)
    not_before: dt.datetime  # aware UTC
    not_after: dt.datetime
    signature_algorithm: str  # e.g. "sha256WithRSAEncryption", "ecdsa-with-SHA256"
    kind: Kind
    self_issued: bool  # subject == issuer (RFC 5280 §3.2), whatever the signature says
    load_problems: tuple[str, ...] = ()
    _x: Any = field(repr=False, default=None)  # cryptography's object: private, never returned

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Certificate) and other.sha256 == self.sha256

    def __hash__(self) -> int:
        return hash(self.sha256)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Certificate.from_der, (self.der,))

    # --- decoded on first use ----------------------------------------------------------

    @cached_property
    def _names(self) -> tuple[str, str, str | None, tuple[str, ...]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                subject_name, issuer_name = self._x.subject, self._x.issuer
                subject, issuer = subject_name.rfc4514_string(), issuer_name.rfc4514_string()
                cn_attrs = subject_name.get_attributes_for_oid(NameOID.COMMON_NAME)
            except (ValueError, TypeError, UnicodeError) as exc:
                # A malformed attribute (wrong string type, bad UTF-8): keep the rest usable.
                return "", "", None, (f"unreadable name: {one_line(exc)}",)
        cn = cn_attrs[0].value if cn_attrs else None
        return subject, issuer, cn if isinstance(cn, str) else None, _warned(caught)

    @property
    def subject(self) -> str:  # RFC 4514
        return self._names[0]

    @property
    def issuer(self) -> str:
        return self._names[1]

    @property
    def subject_cn(self) -> str | None:
        return self._names[2]

    @cached_property
    def _ext(self) -> Extensions:
        problems: list[str] = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = read_extensions(self._x, problems)
        out.problems = tuple(problems) + _warned(caught)
        return out

    @property
    def sans(self) -> SubjectAltNames:
        return self._ext.sans

    @property
    def basic_constraints(self) -> BasicConstraints | None:
        return self._ext.basic_constraints

    @property
    def key_usage(self) -> tuple[str, ...]:
        return self._ext.key_usage

    @property
    def extended_key_usage(self) -> tuple[str, ...]:
        return self._ext.eku

    @property
    def subject_key_id(self) -> str | None:  # hex
        return self._ext.ski

    @property
    def authority_key_id(self) -> str | None:
        return self._ext.aki

    @property
    def extensions(self) -> tuple[Extension, ...]:
        return self._ext.extensions

    @cached_property
    def key(self) -> PublicKeyInfo:
        try:
            return _key_info(self._x.public_key())
        except (ValueError, UnsupportedAlgorithm):
            return PublicKeyInfo(type=KeyType.UNKNOWN, bits=0)

    @cached_property
    def signature_hash(self) -> str | None:
        """"sha256", "sha1", "md5" ...; None for Ed25519/ML-DSA or an unsupported hash."""
        return signature_hash(self._x, self.signature_algorithm)

    @property
    def problems(self) -> tuple[str, ...]:
        """What could not be parsed or breaks RFC 5280 at the encoding level; the rest is right."""
        return tuple(dict.fromkeys(self.load_problems + self._names[3] + self._ext.problems))

    # --- derived ------------------------------------------------------------------------

    @property
    def is_ca(self) -> bool:
        bc = self._ext.basic_constraints  # read once: rules ask this several times per use
        return bc is not None and bc.ca

    @property
    def validity_days(self) -> float:
        return (self.not_after - self.not_before).total_seconds() / 86400

    def valid_at(self, when: dt.datetime) -> bool:
        return self.not_before <= when <= self.not_after

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the certificate can be presented for: SAN DNS + IPs, else the CN."""
        if self.sans.dns or self.sans.ip:
            return self.sans.dns + self.sans.ip
        return (self.subject_cn,) if self.subject_cn else ()

    def pem(self) -> str:
        b64 = base64.encodebytes(self.der).decode().replace("\n", "")
        lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
        return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (see docs/schema); stable keys, ISO-8601 UTC times."""
        return {
            "sha256": self.sha256,
            "sha1": self.sha1,
            "spki_sha256": self.spki_sha256,
            "serial": serial_hex(self.serial),
            "version": self.version,
            "subject": self.subject,
            "issuer": self.issuer,
            "subject_cn": self.subject_cn,
            "sans": self.sans.as_dict(),
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "key": {"type": str(self.key.type), "bits": self.key.bits, "curve": self.key.curve},
            "signature_algorithm": self.signature_algorithm,
            "signature_hash": self.signature_hash,
            "is_ca": self.is_ca,
            "path_length": self.basic_constraints.path_length if self.basic_constraints else None,
            "key_usage": list(self.key_usage),
            "extended_key_usage": list(self.extended_key_usage),
            "subject_key_id": self.subject_key_id,
            "authority_key_id": self.authority_key_id,
            "kind": str(self.kind),
            "self_issued": self.self_issued,
            "problems": list(self.problems),
        }

    @classmethod
    def from_der(cls, der: bytes, *, source: str = "<bytes>") -> Certificate:
        """Parse one DER certificate. Raises ``ParseError`` naming ``source`` and the reason."""
        der = bytes(der)
        with warnings.catch_warnings(record=True) as caught:
            # cryptography warns (negative serial ...) where RFC 5280 is broken; those facts
            # belong in ``problems``, not on the user's stderr.
            warnings.simplefilter("always")
            try:
                cert = cx509.load_der_x509_certificate(der)
                record = _build(cert, der)
            except (ValueError, TypeError, cx509.InvalidVersion) as exc:
                raise ParseError(source, f"not a valid DER certificate ({one_line(exc)})") from None
        if caught:
            record = dataclasses.replace(record, load_problems=_warned(caught), _x=record._x)
        return record


def _warned(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(" ".join(str(w.message).split())[:160] for w in caught))


def serial_hex(serial: int) -> str:
    """Lowercase hex as tools print it; a (non-conforming) negative serial keeps its sign."""
    return format(serial, "x") if serial >= 0 else "-" + format(-serial, "x")


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _build(cert: cx509.Certificate, der: bytes) -> Certificate:
    digest = hashlib.sha256(der).digest()
    tbs = tbs_of(der)
    parts = tbs_parts(tbs)
    self_issued = parts.subject == parts.issuer or (
        # Same length but different bytes: maybe only the string types differ.
        len(parts.subject) == len(parts.issuer)
        and name_atoms(parts.subject) == name_atoms(parts.issuer))
    kind = Kind.ISSUED
    if self_issued:
        verified = _SELF_SIGNED_CACHE.get(digest)
        if verified is None:
            try:
                pub: Any = cert.public_key()
            except (ValueError, UnsupportedAlgorithm):
                pub = None
            verified = pub is not None and signature_verifies(cert, pub, issuer=cert, tbs=tbs)
            if len(_SELF_SIGNED_CACHE) >= _SELF_SIGNED_CACHE_MAX:
                _SELF_SIGNED_CACHE.clear()
            _SELF_SIGNED_CACHE[digest] = verified
        kind = Kind.SELF_SIGNED if verified else Kind.SELF_ISSUED
    return Certificate(
        der=der,
        sha256=digest.hex(),
        sha1=hashlib.sha1(der, usedforsecurity=False).hexdigest(),
        spki_sha256=base64.b64encode(hashlib.sha256(parts.spki).digest()).decode(),
        serial=cert.serial_number,
        version=1 if cert.version == cx509.Version.v1 else 3,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        signature_algorithm=signature_name(cert),
        kind=kind,
        self_issued=self_issued,
        _x=cert,
    )


# A signature check costs 20-100 us; the same certificate is seen again and again (rescans,
# every session of a capture), and the verdict depends only on the DER. Bounded: cleared
# when full rather than grown.
_SELF_SIGNED_CACHE: dict[bytes, bool] = {}
_SELF_SIGNED_CACHE_MAX = 65_536


def _key_info(pub: Any) -> PublicKeyInfo:
    if isinstance(pub, rsa.RSAPublicKey):
        return PublicKeyInfo(type=KeyType.RSA, bits=pub.key_size)
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return PublicKeyInfo(type=KeyType.EC, bits=pub.curve.key_size, curve=pub.curve.name)
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return PublicKeyInfo(type=KeyType.ED25519, bits=256)
    if isinstance(pub, ed448.Ed448PublicKey):
        return PublicKeyInfo(type=KeyType.ED448, bits=456)
    if isinstance(pub, dsa.DSAPublicKey):
        return PublicKeyInfo(type=KeyType.DSA, bits=pub.key_size)
    name = type(pub).__name__  # MLDSA65PublicKey ...
    if name.startswith("MLDSA"):
        return PublicKeyInfo(type=KeyType.ML_DSA, bits=0, curve=f"ML-DSA-{name[5:7]}")
    return PublicKeyInfo(type=KeyType.UNKNOWN, bits=0)


def public_key_pin(key_der_spki: bytes) -> str:
    """The base64 SHA-256 pin of a SubjectPublicKeyInfo (the form ``spki_sha256`` uses)."""
    return base64.b64encode(hashlib.sha256(key_der_spki).digest()).decode()
