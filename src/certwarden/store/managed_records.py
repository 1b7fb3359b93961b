"""The managed-certificate records (plain, immutable) and their closed vocabularies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class KeyPolicy(StrEnum):
    NEW = "new"  # a new key at every renewal (the default: a leaked key ages out)
    REUSE = "reuse"  # keep the key (pinned clients, HSM-held keys)


class ManagedState(StrEnum):
    OK = "ok"  # renews later
    DUE = "due"  # its renewal time has come
    RETRYING = "retrying"  # the last attempt failed; the next one waits for its backoff
    FAILED = "failed"  # every retry failed: a human must look (still retried, slowly)


class AttemptKind(StrEnum):
    REPLACE = "replace"
    RENEW = "renew"


class AttemptOutcome(StrEnum):
    DEPLOYED = "deployed"
    ROLLED_BACK = "rolled-back"  # deployed, failed verification or reload, restored
    REFUSED = "refused"  # the CA or a pre-deploy check said no; nothing was touched
    FAILED = "failed"  # could not finish (issued but not written, ...)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILING = "failing"  # delivery failed; retried with backoff


@dataclass(frozen=True, slots=True, kw_only=True)
class Managed:
    id: int
    names: tuple[str, ...]
    profile: str
    key_policy: KeyPolicy
    renew_before: dt.timedelta | None  # None: renew at 2/3 of the lifetime
    recipe: dict[str, Any]  # the deploy recipe (lifecycle.deploy's format)
    owner: str | None
    serial: str
    sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    renew_at: dt.datetime
    next_attempt_at: dt.datetime | None
    failures: int
    last_error: str | None
    generation: int
    locations: tuple[str, ...]
    lease_owner: str | None = None
    lease_until: dt.datetime | None = None

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before

    def state(self, now: dt.datetime, *, max_failures: int) -> ManagedState:
        if self.failures >= max_failures:
            return ManagedState.FAILED
        if self.failures:
            return ManagedState.RETRYING
        return ManagedState.DUE if self.renew_at <= now else ManagedState.OK

    def next_renewal(self) -> dt.datetime:
        """When a renewer will next try: the renewal time, or the end of the backoff."""
        return max(self.renew_at, self.next_attempt_at or self.renew_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewManaged:
    """What ``ManagedStore.put`` needs to start (or take over) managing a certificate."""

    names: tuple[str, ...]
    profile: str
    key_policy: KeyPolicy
    renew_before: dt.timedelta | None
    recipe: dict[str, Any]
    locations: tuple[str, ...]
    serial: str
    sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    renew_at: dt.datetime
    owner: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    managed_id: int
    kind: AttemptKind
    outcome: AttemptOutcome
    serial: str | None
    reason: str | None
    actor: str
    started_at: dt.datetime
    finished_at: dt.datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One notification to one recipient: recorded once per event, subject and threshold."""

    id: int
    event: str
    subject: str
    threshold: str
    channel: str
    target: str
    managed_id: int | None
    text: str
    payload: dict[str, Any] = field(default_factory=dict)
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobState:
    name: str
    last_run_at: dt.datetime | None
    next_run_at: dt.datetime | None
    last_outcome: str | None
