"""Renewal of managed certificates: when, exactly once, with retries and backoff.

When: at 2/3 of the lifetime (cert-manager's and step-ca's convention), or ``renew_before``
the end when the profile or the location sets one, advanced by a random jitter (at most
``jitter`` x lifetime) so a fleet issued at once does not renew at once.

Exactly once: a renewer claims a certificate with the store's compare-and-set lease before
it issues anything (``ManagedStore.claim``); a second renewer, in another process or on
another machine, sees the claim fail and skips it. A failed attempt is recorded, released,
and retried after an exponential backoff (``retry_base`` x 2^(failures-1), at most
``retry_max``) persisted in the database, so a restart keeps the schedule.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certwarden.ca import Authority
from certwarden.errors import CertwardenError
from certwarden.lifecycle.config import RenewalConfig
from certwarden.lifecycle.deploy import (
    PRE_DEPLOY_CHECKS,
    DeployStatus,
    PreDeployCheck,
    Recipe,
    deploy,
)
from certwarden.lifecycle.deploy_targets import Material, TargetKind
from certwarden.lifecycle.events import Event, EventKind, EventSink
from certwarden.store.managed import ManagedStore
from certwarden.store.managed_records import (
    Attempt,
    AttemptKind,
    AttemptOutcome,
    KeyPolicy,
    Managed,
    NewManaged,
)
from certwarden.x509 import Certificate

RENEW_FRACTION = 2 / 3
# Long enough for an issuance, a reload hook at its timeout and a verification at its own;
# a holder that dies is replaced after it.
DEFAULT_LEASE = dt.timedelta(minutes=15)


class RenewStatus(StrEnum):
    RENEWED = "renewed"
    PLANNED = "planned"  # dry run: would renew
    ROLLED_BACK = "rolled-back"
    REFUSED = "refused"
    FAILED = "failed"
    BUSY = "busy"  # another renewer holds it (or renewed it meanwhile)
    NOT_DUE = "not-due"


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewOutcome:
    managed_id: int
    names: tuple[str, ...]
    status: RenewStatus
    reason: str | None = None
    location: str | None = None
    serial: str | None = None
    next_renewal: dt.datetime | None = None

    def as_dict(self) -> dict[str, object]:
        return {"id": self.managed_id, "names": list(self.names), "status": str(self.status),
                "reason": self.reason, "location": self.location, "serial": self.serial,
                "next_renewal": self.next_renewal.isoformat() if self.next_renewal else None}


def renew_before_for(cfg: RenewalConfig, *, profile: str,
                     locations: Sequence[str]) -> dt.timedelta | None:
    """A location rule wins over the profile's, which wins over the global one."""
    for rule in cfg.locations:
        if rule.renew_before and any(fnmatch.fnmatchcase(u, rule.location) for u in locations):
            return rule.renew_before
    found: dt.timedelta | None = cfg.profiles.get(profile)
    return found or cfg.renew_before


def key_policy_for(cfg: RenewalConfig, locations: Sequence[str]) -> KeyPolicy:
    for rule in cfg.locations:
        if rule.key_policy and any(fnmatch.fnmatchcase(u, rule.location) for u in locations):
            return KeyPolicy(rule.key_policy)
    return KeyPolicy(cfg.key_policy)


def renewal_time(not_before: dt.datetime, not_after: dt.datetime, *,
                 renew_before: dt.timedelta | None, jitter: float,
                 rng: random.Random | None = None) -> dt.datetime:
    lifetime = not_after - not_before
    at = (not_after - renew_before if renew_before is not None and renew_before < lifetime
          else not_before + lifetime * RENEW_FRACTION)
    spread = lifetime * jitter * (rng or random.SystemRandom()).random()
    return max(not_before, at - spread)


def backoff(failures: int, cfg: RenewalConfig) -> dt.timedelta:
    wait: dt.timedelta = cfg.retry_base * 2 ** max(0, failures - 1)
    return min(cfg.retry_max, wait)


def new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def issue_material(authority: Authority, *, names: Sequence[str], profile: str,
                   requested_by: str, key_pem: bytes | None = None) -> Material:
    """A new certificate from the CA (durable in its ledger before this returns)."""
    key_pem = key_pem or new_key_pem()
    key = serialization.load_pem_private_key(key_pem, password=None)
    issued = authority.issue(None, profile=profile, names=tuple(names),
                             requested_by=requested_by,
                             public_key=key.public_key())  # type: ignore[arg-type]
    leaf = Certificate.from_der(issued.leaf_der)
    return Material(leaf_der=issued.leaf_der, chain_der=tuple(issued.chain_der),
                    key_pem=key_pem, serial=issued.serial, sha256=leaf.sha256)


def register(store: ManagedStore, material: Material, *, names: Sequence[str], profile: str,
             recipe: Recipe, locations: Sequence[str], cfg: RenewalConfig,
             owner: str | None = None, rng: random.Random | None = None) -> int:
    """Make what was just deployed a managed certificate; returns its id."""
    leaf = Certificate.from_der(material.leaf_der)
    before = renew_before_for(cfg, profile=profile, locations=locations)
    return store.put(NewManaged(
        names=tuple(names), profile=profile, key_policy=key_policy_for(cfg, locations),
        renew_before=before, recipe=recipe.as_dict(), locations=tuple(locations),
        serial=material.serial, sha256=material.sha256, not_before=leaf.not_before,
        not_after=leaf.not_after, owner=owner,
        renew_at=renewal_time(leaf.not_before, leaf.not_after, renew_before=before,
                              jitter=cfg.jitter, rng=rng)))


def reused_key(managed: Managed) -> bytes | None:
    """The key deployed now, for ``reuse``: read back from the recipe's key file."""
    recipe = Recipe.from_dict(managed.recipe)
    for t in recipe.targets:
        if t.kind is TargetKind.KEY and t.path:
            try:
                return Path(t.path).read_bytes()
            except OSError:
                return None
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Renewer:
    """Everything one renewal round needs; the CLI and the agent build one."""

    store: ManagedStore
    authority: Callable[[], Authority]  # opened only when something is to be issued
    cfg: RenewalConfig
    owner: str  # who holds the leases: host:pid
    events: EventSink
    checks: Sequence[PreDeployCheck] = PRE_DEPLOY_CHECKS
    env: Mapping[str, str] | None = None
    lease: dt.timedelta = DEFAULT_LEASE
    after_deploy: Callable[[Sequence[str]], None] | None = None  # e.g. sweep files into inv
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def select(self, *, due_only: bool, globs: Sequence[str] = ()) -> list[Managed]:
        now = self.clock()
        out = []
        for m in self.store.all():
            if globs and not any(fnmatch.fnmatchcase(u, g) for u in m.locations for g in globs):
                continue
            if due_only and m.next_renewal() > now:
                continue
            out.append(m)
        return out

    def run(self, *, due_only: bool = True, globs: Sequence[str] = (), dry_run: bool = False,
            ) -> list[RenewOutcome]:
        outcomes = []
        for m in self.select(due_only=due_only, globs=globs):
            if dry_run:
                outcomes.append(RenewOutcome(managed_id=m.id, names=m.names,
                                             status=RenewStatus.PLANNED,
                                             next_renewal=m.next_renewal()))
                continue
            outcomes.append(self.renew_one(m))
        return outcomes

    def renew_one(self, m: Managed) -> RenewOutcome:
        started = self.clock()
        if not self.store.claim(m, owner=self.owner, lease=self.lease, now=started):
            return RenewOutcome(managed_id=m.id, names=m.names, status=RenewStatus.BUSY,
                                reason="another renewer holds it or renewed it")
        recipe = Recipe.from_dict(m.recipe)
        location = m.locations[0] if m.locations else f"managed:{m.id}"
        try:
            key = reused_key(m) if m.key_policy is KeyPolicy.REUSE else None
            if m.key_policy is KeyPolicy.REUSE and key is None:
                return self._failed(m, started, AttemptOutcome.FAILED, location,
                                    "key policy is reuse but the deployed key cannot be read")
            material = issue_material(self.authority(), names=m.names, profile=m.profile,
                                      requested_by=f"renew:{self.owner}", key_pem=key)
        except CertwardenError as exc:
            return self._failed(m, started, AttemptOutcome.REFUSED, location, str(exc))
        served = [u for u in m.locations if u.startswith("tls://")]
        result = deploy(material, recipe, location=location, served=served,
                        checks=self.checks, env=self.env)
        if result.status is not DeployStatus.DEPLOYED:
            outcome = {DeployStatus.ROLLED_BACK: AttemptOutcome.ROLLED_BACK,
                       DeployStatus.REFUSED: AttemptOutcome.REFUSED}.get(
                result.status, AttemptOutcome.FAILED)
            if result.status is DeployStatus.ROLLED_BACK:
                # Once per renewal cycle, not once per retry.
                self.events(Event(kind=EventKind.DEPLOY_ROLLED_BACK,
                                  subject=f"managed:{m.id}:{m.generation}",
                                  managed_id=m.id, location=result.location,
                                  names=m.names, reason=result.reason or "",
                                  owner=m.owner))
            return self._failed(m, started, outcome, result.location, result.reason or "",
                                serial=material.serial)
        leaf = Certificate.from_der(material.leaf_der)
        # Today's config decides the next renewal time; what was in effect at registration
        # only when the config says nothing.
        before = renew_before_for(self.cfg, profile=m.profile, locations=m.locations) \
            or m.renew_before
        renew_at = renewal_time(leaf.not_before, leaf.not_after, renew_before=before,
                                jitter=self.cfg.jitter)
        self.store.renewed(m.id, owner=self.owner, serial=material.serial,
                           sha256=material.sha256, not_before=leaf.not_before,
                           not_after=leaf.not_after, renew_at=renew_at)
        self.store.add_attempt(Attempt(managed_id=m.id, kind=AttemptKind.RENEW,
                                       outcome=AttemptOutcome.DEPLOYED, serial=material.serial,
                                       reason=None, actor=self.owner, started_at=started,
                                       finished_at=self.clock()))
        if self.after_deploy is not None:
            self.after_deploy(result.paths)
        self.events(Event(kind=EventKind.RENEWAL_DONE, subject=f"{m.id}:{m.generation + 1}",
                          managed_id=m.id, location=location, names=m.names,
                          reason=f"serial {material.serial}", owner=m.owner))
        return RenewOutcome(managed_id=m.id, names=m.names, status=RenewStatus.RENEWED,
                            serial=material.serial, location=location, next_renewal=renew_at)

    def _failed(self, m: Managed, started: dt.datetime, outcome: AttemptOutcome,
                location: str, reason: str, *, serial: str | None = None) -> RenewOutcome:
        failures = m.failures + 1
        next_at = self.clock() + backoff(failures, self.cfg)
        failures = self.store.failed(m.id, owner=self.owner, reason=f"{location}: {reason}",
                                     next_attempt_at=next_at)
        self.store.add_attempt(Attempt(managed_id=m.id, kind=AttemptKind.RENEW,
                                       outcome=outcome, serial=serial, reason=reason,
                                       actor=self.owner, started_at=started,
                                       finished_at=self.clock()))
        if failures >= self.cfg.attempts:
            self.events(Event(kind=EventKind.RENEWAL_FAILED, subject=m.sha256,
                              managed_id=m.id, location=location, names=m.names,
                              reason=f"{failures} attempts failed; last: {reason}",
                              owner=m.owner))
        status = {AttemptOutcome.ROLLED_BACK: RenewStatus.ROLLED_BACK,
                  AttemptOutcome.REFUSED: RenewStatus.REFUSED}.get(outcome, RenewStatus.FAILED)
        return RenewOutcome(managed_id=m.id, names=m.names, status=status, reason=reason,
                            location=location, serial=serial, next_renewal=next_at)
