"""ACME resources as immutable records and their closed vocabularies.

The store (``certwarden.store.acme_repo``) speaks these records: it builds them from its
rows with ``from_row`` and writes them back, so the ACME core never sees a row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AccountStatus(StrEnum):
    VALID = "valid"
    DEACTIVATED = "deactivated"
    REVOKED = "revoked"


class OrderStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


class AuthzStatus(StrEnum):
    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"
    DEACTIVATED = "deactivated"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ChallengeStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


class ChallengeType(StrEnum):
    HTTP_01 = "http-01"
    DNS_01 = "dns-01"
    TLS_ALPN_01 = "tls-alpn-01"


class IdentifierType(StrEnum):
    DNS = "dns"
    IP = "ip"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Identifier:
    type: IdentifierType
    value: str

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type.value, "value": self.value}


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    id: str
    status: AccountStatus
    jwk: Mapping[str, Any]
    thumbprint: str
    contact: tuple[str, ...]
    tos_agreed: bool
    created_at: dt.datetime
    eab_kid: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Account:
        return cls(id=row["id"], status=AccountStatus(row["status"]), jwk=row["jwk"],
                   thumbprint=row["thumbprint"], contact=tuple(row["contact"] or ()),
                   tos_agreed=bool(row["tos_agreed"]), created_at=row["created_at"],
                   eab_kid=row.get("eab_kid"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    id: str
    authz_id: str
    type: ChallengeType
    token: str
    status: ChallengeStatus
    validated: dt.datetime | None = None
    error: Mapping[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Challenge:
        return cls(id=row["id"], authz_id=row["authz_id"], type=ChallengeType(row["type"]),
                   token=row["token"], status=ChallengeStatus(row["status"]),
                   validated=row.get("validated"), error=row.get("error"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    id: str
    order_id: str
    account_id: str
    identifier: Identifier
    wildcard: bool
    status: AuthzStatus
    expires: dt.datetime
    challenges: tuple[Challenge, ...]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Authorization:
        return cls(id=row["id"], order_id=row["order_id"], account_id=row["account_id"],
                   identifier=Identifier(type=IdentifierType(row["identifier_type"]),
                                         value=row["identifier_value"]),
                   wildcard=bool(row["wildcard"]), status=AuthzStatus(row["status"]),
                   expires=row["expires"],
                   challenges=tuple(Challenge.from_row(c) for c in row.get("challenges", ())))


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    id: str
    account_id: str
    status: OrderStatus
    identifiers: tuple[Identifier, ...]
    authz_ids: tuple[str, ...]
    profile: str
    expires: dt.datetime
    created_at: dt.datetime
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    error: Mapping[str, Any] | None = None
    cert_id: str | None = None
    replaces: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Order:
        return cls(id=row["id"], account_id=row["account_id"], status=OrderStatus(row["status"]),
                   identifiers=tuple(Identifier(type=IdentifierType(i["type"]), value=i["value"])
                                     for i in row["identifiers"]),
                   authz_ids=tuple(row.get("authz_ids", ())), profile=row["profile"],
                   expires=row["expires"], created_at=row["created_at"],
                   not_before=row.get("not_before"), not_after=row.get("not_after"),
                   error=row.get("error"), cert_id=row.get("cert_id"),
                   replaces=row.get("replaces"))


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedCertificate:
    id: str
    order_id: str
    account_id: str
    serial: str  # lower-case hex, no leading zeros
    sha256: str
    ari_id: str  # RFC 9773 certID: base64url(AKI keyIdentifier) "." base64url(serial)
    chain_pem: str  # leaf first
    alternates: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None = None
    revocation_reason: int | None = None
    replaced_by: str | None = None  # the order that declared it "replaces" this one

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> IssuedCertificate:
        return cls(id=row["id"], order_id=row["order_id"], account_id=row["account_id"],
                   serial=row["serial"], sha256=row["sha256"], ari_id=row["ari_id"],
                   chain_pem=row["chain_pem"], alternates=tuple(row["alternates"] or ()),
                   not_before=row["not_before"], not_after=row["not_after"],
                   revoked_at=row.get("revoked_at"),
                   revocation_reason=row.get("revocation_reason"),
                   replaced_by=row.get("replaced_by"))


@dataclass(frozen=True, slots=True, kw_only=True)
class EabKey:
    """An external account binding key the operator handed out (§7.3.4)."""

    kid: str
    hmac_key: bytes = field(repr=False)
    account_id: str | None  # the account it bound, once used
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EabKey:
        return cls(kid=row["kid"], hmac_key=bytes(row["hmac_key"]),
                   account_id=row["account_id"], created_at=row["created_at"])
