"""The CA's records: what it is (``Issuer``), what it signed (``Issued``), what it revoked
(``Revocation``), what it published (``CrlRecord``) and who did what (``AuditEvent``)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certwarden.errors import UsageError


class RevocationReason(StrEnum):
    """RFC 5280 CRLReason; the values are the RFC's own names (wire and CLI spelling)."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "cACompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"
    AA_COMPROMISE = "aACompromise"

    @classmethod
    def parse(cls, text: str) -> RevocationReason:
        norm = text.replace("-", "").replace("_", "").lower()
        for reason in cls:
            if reason.value.lower() == norm:
                return reason
        raise UsageError(f"unknown revocation reason {text!r}; one of: "
                         f"{', '.join(r.value for r in cls)}")

    @property
    def flag(self) -> x509.ReasonFlags:
        return _FLAGS[self]

    @property
    def code(self) -> int:
        return _CODES[self]

    @classmethod
    def from_code(cls, code: int) -> RevocationReason:
        """The reason of an RFC 5280 CRLReason number (ACME's ``reason``); ValueError if none."""
        for reason, number in _CODES.items():
            if number == code:
                return reason
        raise ValueError(f"no revocation reason has code {code}")


_FLAGS = {r: x509.ReasonFlags(r.value) for r in RevocationReason}
_CODES = {RevocationReason.UNSPECIFIED: 0, RevocationReason.KEY_COMPROMISE: 1,
          RevocationReason.CA_COMPROMISE: 2, RevocationReason.AFFILIATION_CHANGED: 3,
          RevocationReason.SUPERSEDED: 4, RevocationReason.CESSATION_OF_OPERATION: 5,
          RevocationReason.PRIVILEGE_WITHDRAWN: 9, RevocationReason.AA_COMPROMISE: 10}


class IssuerRole(StrEnum):
    ROOT = "root"
    INTERMEDIATE = "intermediate"


class CertStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class AuditAction(StrEnum):
    INIT = "init"
    ISSUE = "issue"
    REFUSE = "refuse"
    REVOKE = "revoke"
    CRL = "crl"


def serial_hex(serial: int) -> str:
    """The canonical stored form of a serial: lowercase hex, at least 32 digits."""
    return f"{serial:032x}"


def ari_id(authority_key_id: bytes, serial: int) -> str:
    """RFC 9773 §4.1 certificate identifier: base64url(AKI keyIdentifier) "." base64url(the
    DER INTEGER body of the serial, a leading 0x00 kept), both unpadded."""
    body = serial.to_bytes((serial.bit_length() + 8) // 8, "big")

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    return f"{b64(authority_key_id)}.{b64(body)}"


def parse_serial(text: str) -> int:
    t = text.strip().lower().replace(":", "")
    t = t.removeprefix("0x")
    try:
        value = int(t, 16)
    except ValueError:
        raise UsageError(f"not a serial number (hex) or certificate file: {text!r}") from None
    if value <= 0:
        raise UsageError(f"serial numbers are positive: {text!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuer:
    """A CA certificate of ours and where its key lives."""

    name: str                 # slug; URL path segment of /crl/<name>.crl
    role: IssuerRole
    certificate_der: bytes
    key_ref: str              # file:/path or pkcs11:... (never with a PIN)
    parent: str | None = None
    created_at: dt.datetime

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.certificate_der)

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(Encoding.PEM).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Issued:
    """One certificate the CA signed; recorded durably before anyone sees it."""

    serial: str               # serial_hex()
    issuer: str
    subject: str
    names: tuple[str, ...]
    profile: str
    not_before: dt.datetime
    not_after: dt.datetime
    certificate_der: bytes
    sha256: str
    requested_by: str
    issued_at: dt.datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Revocation:
    serial: str
    issuer: str
    reason: RevocationReason
    revoked_at: dt.datetime
    revoked_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CrlRecord:
    issuer: str
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    at: dt.datetime
    actor: str
    action: AuditAction
    issuer: str | None = None
    serial: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedChain:
    """What ``Authority.issue`` returns: the leaf, then the chain up to (not incl.) the root.

    ``record`` holds the serial and SHA-256; ``ari_id`` is the RFC 9773 identifier, so no
    caller (ACME) has to parse the leaf again to learn them.
    """

    record: Issued
    leaf_der: bytes
    chain_der: tuple[bytes, ...] = field(default=())
    ari_id: str = ""

    @property
    def serial(self) -> str:
        return self.record.serial

    def pem(self, *, with_chain: bool = True) -> str:
        ders = (self.leaf_der, *self.chain_der) if with_chain else (self.leaf_der,)
        return "".join(x509.load_der_x509_certificate(d).public_bytes(Encoding.PEM).decode()
                       for d in ders)
