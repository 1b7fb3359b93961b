"""RFC 7807 problem documents with RFC 8555 error types. The problem IS the exception.

Every refusal the ACME core makes is an ``AcmeProblem``; the web layer turns it into an
``application/problem+json`` response in one place, with the status from ``STATUS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from certwarden.errors import CertwardenError

NS = "urn:ietf:params:acme:error:"


class ProblemType(StrEnum):
    """RFC 8555 §6.7 (and RFC 9773 / 8555bis additions we use). Wire name is ``NS + value``."""

    ACCOUNT_DOES_NOT_EXIST = "accountDoesNotExist"
    ALREADY_REVOKED = "alreadyRevoked"
    BAD_CSR = "badCSR"
    BAD_NONCE = "badNonce"
    BAD_PUBLIC_KEY = "badPublicKey"
    BAD_REVOCATION_REASON = "badRevocationReason"
    BAD_SIGNATURE_ALGORITHM = "badSignatureAlgorithm"
    CAA = "caa"
    COMPOUND = "compound"
    CONNECTION = "connection"
    DNS = "dns"
    EXTERNAL_ACCOUNT_REQUIRED = "externalAccountRequired"
    INCORRECT_RESPONSE = "incorrectResponse"
    INVALID_CONTACT = "invalidContact"
    MALFORMED = "malformed"
    ORDER_NOT_READY = "orderNotReady"
    RATE_LIMITED = "rateLimited"
    REJECTED_IDENTIFIER = "rejectedIdentifier"
    SERVER_INTERNAL = "serverInternal"
    TLS = "tls"
    UNAUTHORIZED = "unauthorized"
    UNSUPPORTED_CONTACT = "unsupportedContact"
    UNSUPPORTED_IDENTIFIER = "unsupportedIdentifier"
    USER_ACTION_REQUIRED = "userActionRequired"
    BAD_PROFILE = "invalidProfile"
    CONFLICT = "conflict"  # key change to a key already in use (RFC 8555 §7.3.5 answers 409)
    NOT_FOUND = "notFound"  # not an RFC 8555 type; used with 404 for unknown resources


# The one table of HTTP statuses (RFC 8555 §6.7 leaves most to the server; these follow
# Boulder/Pebble so clients that branch on the status behave as they do against Let's Encrypt).
STATUS: Mapping[ProblemType, int] = {
    ProblemType.ACCOUNT_DOES_NOT_EXIST: 400,
    ProblemType.ALREADY_REVOKED: 400,
    ProblemType.BAD_CSR: 400,
    ProblemType.BAD_NONCE: 400,
    ProblemType.BAD_PUBLIC_KEY: 400,
    ProblemType.BAD_REVOCATION_REASON: 400,
    ProblemType.BAD_SIGNATURE_ALGORITHM: 400,
    ProblemType.CAA: 403,
    ProblemType.COMPOUND: 403,
    ProblemType.CONNECTION: 400,
    ProblemType.DNS: 400,
    ProblemType.EXTERNAL_ACCOUNT_REQUIRED: 401,
    ProblemType.INCORRECT_RESPONSE: 403,
    ProblemType.INVALID_CONTACT: 400,
    ProblemType.MALFORMED: 400,
    ProblemType.ORDER_NOT_READY: 403,
    ProblemType.RATE_LIMITED: 429,
    ProblemType.REJECTED_IDENTIFIER: 400,
    ProblemType.SERVER_INTERNAL: 500,
    ProblemType.TLS: 400,
    ProblemType.UNAUTHORIZED: 403,
    ProblemType.UNSUPPORTED_CONTACT: 400,
    ProblemType.UNSUPPORTED_IDENTIFIER: 400,
    ProblemType.USER_ACTION_REQUIRED: 403,
    ProblemType.BAD_PROFILE: 400,
    ProblemType.CONFLICT: 409,
    ProblemType.NOT_FOUND: 404,
}


class AcmeProblem(CertwardenError):  # noqa: N818 - RFC 7807 calls it a problem
    """An ACME error: ``type``, one-line ``detail``, HTTP ``status``, optional subproblems."""

    def __init__(
        self,
        type_: ProblemType,
        detail: str,
        *,
        status: int | None = None,
        identifier: Mapping[str, str] | None = None,
        subproblems: Sequence[AcmeProblem] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.type = type_
        self.detail = " ".join(detail.split())
        self.status = status if status is not None else STATUS[type_]
        self.identifier = dict(identifier) if identifier else None
        self.subproblems = tuple(subproblems)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": NS + self.type.value, "detail": self.detail,
                               "status": self.status}
        if self.identifier:
            doc["identifier"] = self.identifier
        if self.subproblems:
            doc["subproblems"] = [p.as_dict() for p in self.subproblems]
        doc.update(self.extra)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AcmeProblem:
        """Rebuild a stored problem (an order's or challenge's ``error``)."""
        raw = str(doc.get("type", ""))
        try:
            type_ = ProblemType(raw.removeprefix(NS))
        except ValueError:
            type_ = ProblemType.SERVER_INTERNAL
        return cls(type_, str(doc.get("detail", "")), status=int(doc.get("status", 0)) or None,
                   identifier=doc.get("identifier"),
                   subproblems=[cls.from_dict(s) for s in doc.get("subproblems", ())])


def malformed(detail: str) -> AcmeProblem:
    return AcmeProblem(ProblemType.MALFORMED, detail)
