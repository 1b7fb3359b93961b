"""Run every enabled rule over the inventory: sightings in, findings out.

Two passes: the ``Estate`` index over everything first (cross-certificate rules need it),
then each sighting on its own. One certificate that trips a rule's assumptions never stops
the batch: the error becomes an ``assessment-error`` entry in ``Assessment.errors``.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from certwarden.assess.finding import Finding, Rule, Scope, Severity
from certwarden.assess.policy import Policy, default_policy
from certwarden.assess.rules import RULES, RULES_BY_ID
from certwarden.assess.target import Estate, Target
from certwarden.errors import CertwardenError
from certwarden.records import Location, LocationKind, Sighting
from certwarden.x509 import Certificate, Kind
from certwarden.x509.revocation import RevocationIndex
from certwarden.x509.verify import Problem, TrustStore, VerifyResult, issued_by, verify_chain

# ``issued_by`` is private in x509.verify; it is the one signature check there is, and
# duplicating it here would be worse than naming it. (Asked upstream to make it public.)

_SERVED_KINDS = frozenset({LocationKind.TLS, LocationKind.PCAP})
_SELF_SIGNED = Kind.SELF_SIGNED
_CHAIN_CACHE_MAX = 20_000  # chain shapes kept per run; an estate has far fewer issuers

# "Will automation renew this certificate?" -- the hook for managed certificates (lifecycle
# knows; assess must not import it). The default answers no for everything.
Managed = Callable[[Certificate, Sighting | None], bool]


def never_managed(cert: Certificate, sighting: Sighting | None) -> bool:
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    findings: tuple[Finding, ...]
    certificates: tuple[Certificate, ...]  # distinct, as assessed (for reports and charts)
    sightings: tuple[Sighting, ...]
    policy: Policy
    generated_at: dt.datetime
    trust_store: str
    suppressed: int = 0  # findings silenced by an active policy exception
    errors: tuple[str, ...] = ()

    def by_severity(self) -> dict[str, int]:
        counts = Counter(str(f.severity) for f in self.findings)
        return {str(s): counts.get(str(s), 0) for s in reversed(Severity)}

    def by_rule(self) -> dict[str, int]:
        counts = Counter(f.rule for f in self.findings)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def at_or_above(self, level: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= level.rank]


def load_trust(policy: Policy, *, spec: str | None = None,
               own: Sequence[Certificate] = ()) -> TrustStore:
    """The trust store an assessment verifies chains against. Raises ``UsageError``.

    ``spec`` (``--trust FILE|DIR|system|certifi``) replaces the policy's ``trust``; the
    policy's ``trust_anchors`` are added, and so are ``own``: the roots of certwarden's own
    private CA, which anchor what it issued without any policy file saying so.
    """
    which = spec or policy.trust
    base = TrustStore.of((), name="none") if which == "none" else TrustStore.load(which)
    anchors, name = base.anchors, base.name
    if policy.trust_anchors:
        extra = TrustStore.from_paths(policy.trust_anchors, name="policy trust_anchors")
        anchors, name = anchors + extra.anchors, f"{name} + policy anchors"
    if own:
        anchors, name = anchors + tuple(own), f"{name} + certwarden CA"
    return base if name == base.name else TrustStore.of(anchors, name=name)


class Assessor:
    """Holds the policy, trust store and estate index; assesses one sighting at a time."""

    def __init__(self, *, policy: Policy, trust: TrustStore, estate: Estate,
                 now: dt.datetime, revocations: RevocationIndex | None = None,
                 managed: Managed = never_managed) -> None:
        self.policy = policy
        self.revocations = revocations or None  # an empty index is no index
        self.managed = managed
        self.trust = trust
        self.estate = estate
        self.now = now
        self.today = now.date()
        self.rules: tuple[Rule, ...] = tuple(
            r for r in RULES if r.scope is not Scope.POLICY and policy.enabled(r.id))
        self.suppressed = 0
        self._chains: dict[tuple[object, ...], tuple[VerifyResult, bool]] = {}
        # What each finding of a rule carries besides the hit, worked out once per run; rules
        # that only fire on a served leaf are left out of the table for everything else.
        self._table = tuple(
            (r.id, r.check, policy.severity_of(r.id, r.severity), r.remediation, r.citation)
            for r in self.rules)
        self._table_unserved = tuple(
            row for row, r in zip(self._table, self.rules, strict=True) if not r.served_only)
        # Only an active exception can silence a finding; without one, none is looked up.
        self._waivers = any(w.active(self.today) for w in policy.exceptions)

    def _chain(self, s: Sighting) -> VerifyResult | None:
        """The presented chain's verdict, computed in full once per chain shape.

        Leaves under the same issuer and the same presented chain share everything the chain
        rules read (where the path ends, what is missing, the issuers' own state); only the
        leaf's own signature differs, so that is checked for every leaf (40-100 us).
        """
        leaf = s.certificate
        if (s.location.kind not in _SERVED_KINDS or s.position != 0
                or leaf.kind == _SELF_SIGNED):
            return None
        shape = (leaf.issuer, leaf.authority_key_id, leaf.signature_hash, leaf.is_ca,
                 *(c.sha256 for c in s.chain))
        cached = self._chains.get(shape)
        if cached is None or cached[0].chain[0] == leaf:
            return self._verify_fully(shape, s)
        first, first_ok = cached
        if len(first.chain) < 2:
            return VerifyResult(valid=first.valid, problems=first.problems, chain=(leaf,),
                                detail=first.detail)
        ok = issued_by(leaf, first.chain[1])
        if ok == first_ok:
            return VerifyResult(valid=first.valid, problems=first.problems,
                                chain=(leaf, *first.chain[1:]), detail=first.detail)
        if ok:  # the representative was the odd one out: let this leaf represent the shape
            return self._verify_fully(shape, s)
        # Same issuer name and key id, but that key did not sign this leaf.
        return VerifyResult(valid=False,
                            problems=tuple(dict.fromkeys((*first.problems,
                                                          Problem.BAD_SIGNATURE))),
                            chain=(leaf, *first.chain[1:]), detail=first.detail)

    def _verify_fully(self, shape: tuple[object, ...], s: Sighting) -> VerifyResult:
        with warnings.catch_warnings():
            # cryptography re-warns about odd names while building the path; those are
            # already in ``Certificate.problems`` and must not reach the user's stderr.
            warnings.simplefilter("ignore")
            result = verify_chain(s.certificate, s.chain, self.trust, at=self.now)
        ok = len(result.chain) < 2 or issued_by(s.certificate, result.chain[1])
        if len(self._chains) >= _CHAIN_CACHE_MAX:
            self._chains.clear()
        self._chains[shape] = (result, ok)
        return result

    def assess(self, cert: Certificate, sighting: Sighting | None) -> list[Finding]:
        location = sighting.location.uri if sighting else None
        owner = self.policy.owner_of(location)
        target = Target(certificate=cert, sighting=sighting, estate=self.estate,
                        policy=self.policy, now=self.now, owner=owner,
                        chain=self._chain(sighting) if sighting else None,
                        revocations=self.revocations,
                        managed=self.managed(cert, sighting))
        served = (sighting is not None and sighting.location.kind in _SERVED_KINDS
                  and sighting.position == 0)  # as ``Target.served``
        out: list[Finding] = []
        for rule_id, check, severity, remediation, citation in (
                self._table if served else self._table_unserved):
            for hit in check(target):
                if self._waivers and self.policy.waiver_for(rule_id, cert.sha256, location,
                                                            self.today):
                    self.suppressed += 1
                    continue
                out.append(Finding(
                    rule=rule_id, severity=severity, sha256=cert.sha256, location=location,
                    message=hit.message, evidence=hit.evidence, remediation=remediation,
                    citation=citation, owner=owner.team if owner else None,
                    subject=cert.subject))
        return out

    def policy_findings(self) -> list[Finding]:
        rule = RULES_BY_ID["exception-expired"]
        if not self.policy.enabled(rule.id):
            return []
        out = []
        for w in self.policy.exceptions:
            if w.active(self.today):
                continue
            where = f"{self.policy.source}:{w.line}" if w.line else self.policy.source
            out.append(Finding(
                rule=rule.id, severity=self.policy.severity_of(rule.id, rule.severity),
                # A finding always names a place: the waiver's locations, else the policy file.
                sha256=w.sha256, location=w.location or Location.file(self.policy.source).uri,
                message=f"exception for {w.label} (owner {w.owner}) expired on "
                        f"{w.expires:%Y-%m-%d}: {w.reason}",
                evidence={"policy": where, "owner": w.owner,
                          "expires": w.expires.isoformat(), "rules": ", ".join(w.rules) or "*"},
                remediation=rule.remediation, citation=rule.citation, owner=w.owner))
        return out


def assess(sightings: Sequence[Sighting], *, certificates: Iterable[Certificate] = (),
           policy: Policy | None = None, trust: TrustStore | None = None,
           now: dt.datetime | None = None,
           revocations: RevocationIndex | None = None,
           managed: Managed = never_managed) -> Assessment:
    """Assess an inventory held in memory (see bench/assess.py for the streaming form).

    ``managed`` says which certificates automation will renew (``expiring-soon`` is quiet
    for them); by default none.
    """
    policy = policy or default_policy()
    trust = trust if trust is not None else load_trust(policy)
    now = now or dt.datetime.now(dt.UTC)
    seen_certs = {s.certificate.sha256: s.certificate for s in sightings}
    # An issuer only ever seen inside a presented chain is judged by the chain rules of the
    # leaves it signs; any other certificate without a sighting is assessed on its own.
    issuers = {c.sha256 for s in sightings for c in s.chain}
    unseen = [c for c in certificates if c.sha256 not in seen_certs and c.sha256 not in issuers]
    estate = Estate.build(sightings, unseen)
    assessor = Assessor(policy=policy, trust=trust, estate=estate, now=now,
                        revocations=revocations, managed=managed)
    findings: list[Finding] = []
    errors: list[str] = []
    targets: list[tuple[Certificate, Sighting | None]] = [(s.certificate, s) for s in sightings]
    targets += [(c, None) for c in unseen]
    for cert, sighting in targets:
        try:
            findings.extend(assessor.assess(cert, sighting))
        except (CertwardenError, ValueError, TypeError, AttributeError) as exc:
            where = sighting.location.uri if sighting else cert.sha256
            errors.append(f"{where}: {type(exc).__name__}: {exc}")
    findings.extend(assessor.policy_findings())
    findings.sort(key=lambda f: (-f.severity.rank, f.rule, f.location or "", f.sha256 or ""))
    return Assessment(findings=tuple(findings),
                      certificates=tuple(seen_certs.values()) + tuple(unseen),
                      sightings=tuple(sightings), policy=policy, generated_at=now,
                      trust_store=trust.name, suppressed=assessor.suppressed,
                      errors=tuple(errors))


def findings_by_location(sightings: Sequence[Sighting], *, policy: Policy | None = None,
                         trust: TrustStore | None = None, now: dt.datetime | None = None,
                         revocations: RevocationIndex | None = None,
                         ) -> dict[str, list[Finding]]:
    """For ``inspect`` and ``scan``: the findings for what was just seen, per location URI.

    No inventory is needed; cross-certificate rules see only these sightings.
    """
    result = assess(sightings, policy=policy, trust=trust, now=now, revocations=revocations)
    out: dict[str, list[Finding]] = {s.location.uri: [] for s in sightings}
    for f in result.findings:
        if f.location is not None:
            out.setdefault(f.location, []).append(f)
    return out
