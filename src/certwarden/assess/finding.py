"""The vocabulary of a verdict: severities, rule metadata, and the ``Finding`` record."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from certwarden.records import Severity as Severity  # re-exported: the vocabulary of a verdict
from certwarden.records import frozen_map

if TYPE_CHECKING:
    from certwarden.assess.target import Target


class Scope(StrEnum):
    """What a rule needs to see; the engine hands each rule exactly that."""

    CERTIFICATE = "certificate"  # the certificate alone
    LOCATION = "location"  # the certificate where it was seen (chain, name, file mode)
    ESTATE = "estate"  # the certificate against the whole inventory
    POLICY = "policy"  # the policy itself (expired exceptions)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """What a rule's check returns when it fires: the message and the evidence for it."""

    message: str
    evidence: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", frozen_map(self.evidence))


Check = Callable[["Target"], Iterable[Hit]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One rule: a stable id, a default severity, why it matters, and where that is written."""

    id: str
    title: str
    severity: Severity
    scope: Scope
    rationale: str  # one line
    citation: str  # RFC 5280 §..., CA/B BR §..., the seed
    remediation: str
    check: Check = field(repr=False, compare=False)
    # The check can only fire on a leaf served in a handshake (``Target.served``): the engine
    # skips it for stored certificates and chain issuers without calling it.
    served_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A rule's verdict on a certificate where it was seen."""

    rule: str
    severity: Severity
    sha256: str | None  # None only for findings about the policy itself
    # Location.uri (for a policy finding: the waiver's glob, else the policy file); None only
    # for a certificate handed to ``assess`` with no sighting at all (`report` never does).
    location: str | None
    message: str
    evidence: Mapping[str, str] = field(default_factory=dict)
    remediation: str = ""
    citation: str = ""
    owner: str | None = None  # the team that owns the location, from the policy
    subject: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", frozen_map(self.evidence))

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": str(self.severity), "sha256": self.sha256,
                "location": self.location, "message": self.message,
                "evidence": dict(self.evidence), "remediation": self.remediation,
                "citation": self.citation, "owner": self.owner, "subject": self.subject}
