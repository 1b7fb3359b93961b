"""``ManagedStore``: managed certificates, their attempts, notifications and the agent's jobs.

Exactly-once work across processes (two renewers, two agents, SQLite or PostgreSQL) rests on
one primitive, a lease taken by compare-and-set: ``UPDATE ... SET lease_owner = me WHERE id =
X AND generation = G AND (lease_until IS NULL OR lease_until < now)``. The database applies
it atomically (SQLite takes its write lock; PostgreSQL re-checks the WHERE clause against the
row a concurrent committer left), so of two claimants exactly one sees ``rowcount == 1``; a
renewal done bumps ``generation``, so a renewer that read the row before it cannot claim it
afterwards. A lease that outlives its holder (a killed process) expires and the work is
retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certwarden.errors import UsageError
from certwarden.store.db import make_engine, session_factory
from certwarden.store.inventory_records import Transaction
from certwarden.store.managed_records import (
    Attempt,
    AttemptKind,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    JobState,
    KeyPolicy,
    Managed,
    NewManaged,
)
from certwarden.store.managed_tables import (
    AttemptRow,
    JobRow,
    ManagedLocationRow,
    ManagedRow,
    NotificationRow,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _uri_key(uri: str) -> str:
    return hashlib.sha256(uri.encode("utf-8", "surrogateescape")).hexdigest()


def _managed(row: ManagedRow, locations: Sequence[str]) -> Managed:
    return Managed(id=row.id, names=tuple(json.loads(row.names)), profile=row.profile,
                   key_policy=KeyPolicy(row.key_policy),
                   renew_before=(dt.timedelta(seconds=row.renew_before_s)
                                 if row.renew_before_s is not None else None),
                   recipe=dict(json.loads(row.recipe)), owner=row.owner, serial=row.serial,
                   sha256=row.sha256, not_before=row.not_before, not_after=row.not_after,
                   renew_at=row.renew_at, next_attempt_at=row.next_attempt_at,
                   failures=row.failures, last_error=row.last_error,
                   generation=row.generation, locations=tuple(locations),
                   lease_owner=row.lease_owner, lease_until=row.lease_until)


def _delivery(r: NotificationRow) -> Delivery:
    return Delivery(id=r.id, event=r.event, subject=r.subject, threshold=r.threshold,
                    channel=r.channel, target=r.target, managed_id=r.managed_id, text=r.text,
                    payload=dict(json.loads(r.payload)), status=DeliveryStatus(r.status),
                    attempts=r.attempts, last_error=r.last_error,
                    next_attempt_at=r.next_attempt_at, sent_at=r.sent_at)


def _free(col_until: Any, now: dt.datetime) -> Any:
    return or_(col_until.is_(None), col_until < now)


class ManagedStore:
    """Open with ``ManagedStore.open(url)``; every method commits before it returns."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    @classmethod
    def open(cls, url: str) -> ManagedStore:
        return cls(make_engine(url))

    def __enter__(self) -> ManagedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    # --- managed certificates ----------------------------------------------------------

    def put(self, new: NewManaged) -> int:
        """Start managing ``new`` — or, when one of its locations is managed already, take
        that record over (a second ``replace`` of the same files is the same certificate)."""
        now = _now()
        keys = {_uri_key(u): u for u in dict.fromkeys(new.locations)}
        with self._write() as s:
            found = s.scalars(select(ManagedLocationRow.managed_id).where(
                ManagedLocationRow.uri_sha256.in_(list(keys) or [""]))).first()
            row = s.get(ManagedRow, found) if found is not None else None
            if row is None:
                row = ManagedRow(created_at=now, generation=0, failures=0)
                s.add(row)
            else:
                row.generation += 1
            row.names, row.profile = json.dumps(list(new.names)), new.profile
            row.key_policy = str(new.key_policy)
            row.renew_before_s = (int(new.renew_before.total_seconds())
                                  if new.renew_before is not None else None)
            row.recipe, row.owner = json.dumps(new.recipe, sort_keys=True), new.owner
            row.serial, row.sha256 = new.serial, new.sha256
            row.not_before, row.not_after, row.renew_at = (new.not_before, new.not_after,
                                                           new.renew_at)
            row.next_attempt_at, row.failures, row.last_error = None, 0, None
            row.lease_owner = row.lease_until = None
            row.updated_at = now
            s.flush()
            existing = {r.uri_sha256: r for r in s.scalars(select(ManagedLocationRow).where(
                ManagedLocationRow.uri_sha256.in_(list(keys) or [""])))}
            for key, uri in keys.items():
                loc = existing.get(key)
                if loc is None:
                    s.add(ManagedLocationRow(managed_id=row.id, uri_sha256=key, uri=uri))
                else:
                    loc.managed_id = row.id  # moved from another managed certificate
            return row.id

    def all(self) -> list[Managed]:
        with self._read() as s:
            rows = list(s.scalars(select(ManagedRow).order_by(ManagedRow.id)))
            return [_managed(r, self._locations(s, r.id)) for r in rows]

    def get(self, managed_id: int) -> Managed:
        with self._read() as s:
            row = s.get(ManagedRow, managed_id)
            if row is None:
                raise UsageError(f"no managed certificate {managed_id}")
            return _managed(row, self._locations(s, row.id))

    def managing(self, location: str) -> int | None:
        """The id of the managed certificate deployed at ``location``, if any."""
        with self._read() as s:
            found: int | None = s.scalar(select(ManagedLocationRow.managed_id).where(
                ManagedLocationRow.uri_sha256 == _uri_key(location)))
            return found

    @staticmethod
    def _locations(s: Session, managed_id: int) -> list[str]:
        return list(s.scalars(select(ManagedLocationRow.uri).where(
            ManagedLocationRow.managed_id == managed_id).order_by(ManagedLocationRow.id)))

    def claim(self, managed: Managed, *, owner: str, lease: dt.timedelta,
              now: dt.datetime | None = None) -> bool:
        """Take the renewal of ``managed`` (as read) for ``lease``; False: someone else has it,
        or it was renewed since it was read."""
        now = now or _now()
        with self._write() as s:
            res = s.execute(update(ManagedRow).where(
                ManagedRow.id == managed.id, ManagedRow.generation == managed.generation,
                _free(ManagedRow.lease_until, now)).values(
                lease_owner=owner, lease_until=now + lease).execution_options(
                synchronize_session=False))
            return bool(getattr(res, "rowcount", 0) == 1)

    def renewed(self, managed_id: int, *, owner: str, serial: str, sha256: str,
                not_before: dt.datetime, not_after: dt.datetime, renew_at: dt.datetime) -> bool:
        """Record a renewal done under our lease; the lease is released."""
        with self._write() as s:
            res = s.execute(update(ManagedRow).where(
                ManagedRow.id == managed_id, ManagedRow.lease_owner == owner).values(
                serial=serial, sha256=sha256, not_before=not_before, not_after=not_after,
                renew_at=renew_at, next_attempt_at=None, failures=0, last_error=None,
                generation=ManagedRow.generation + 1, lease_owner=None, lease_until=None,
                updated_at=_now()).execution_options(synchronize_session=False))
            return bool(getattr(res, "rowcount", 0) == 1)

    def failed(self, managed_id: int, *, owner: str, reason: str,
               next_attempt_at: dt.datetime) -> int:
        """Record a failed attempt under our lease; returns the consecutive failure count."""
        with self._write() as s:
            row = s.get(ManagedRow, managed_id)
            if row is None or row.lease_owner != owner:
                return row.failures if row is not None else 0
            row.failures += 1
            row.last_error, row.next_attempt_at = reason, next_attempt_at
            row.lease_owner = row.lease_until = None
            row.updated_at = _now()
            return row.failures

    def release(self, managed_id: int, *, owner: str) -> None:
        with self._write() as s:
            s.execute(update(ManagedRow).where(
                ManagedRow.id == managed_id, ManagedRow.lease_owner == owner).values(
                lease_owner=None, lease_until=None).execution_options(
                synchronize_session=False))

    # --- attempts ----------------------------------------------------------------------

    def add_attempt(self, a: Attempt) -> None:
        with self._write() as s:
            s.add(AttemptRow(managed_id=a.managed_id, kind=str(a.kind), outcome=str(a.outcome),
                             serial=a.serial, reason=a.reason, actor=a.actor[:128],
                             started_at=a.started_at, finished_at=a.finished_at))

    def attempts(self, managed_id: int | None = None) -> list[Attempt]:
        stmt = select(AttemptRow).order_by(AttemptRow.id)
        if managed_id is not None:
            stmt = stmt.where(AttemptRow.managed_id == managed_id)
        with self._read() as s:
            return [Attempt(managed_id=r.managed_id, kind=AttemptKind(r.kind),
                            outcome=AttemptOutcome(r.outcome), serial=r.serial, reason=r.reason,
                            actor=r.actor, started_at=r.started_at, finished_at=r.finished_at)
                    for r in s.scalars(stmt)]

    # --- notifications -----------------------------------------------------------------

    def notify_once(self, *, event: str, subject: str, threshold: str, channel: str,
                    target: str, managed_id: int | None, text: str,
                    payload: dict[str, Any]) -> bool:
        """Record one delivery to make; False when this event was recorded before (the unique
        key is event + subject + threshold + channel + target, so it survives restarts)."""
        row = NotificationRow(event=event, subject=subject[:200], threshold=threshold,
                              channel=channel, target=target[:400], managed_id=managed_id,
                              text=text, payload=json.dumps(payload, sort_keys=True,
                                                            default=str),
                              status=str(DeliveryStatus.PENDING), attempts=0,
                              created_at=_now())
        try:
            with self._write() as s:
                s.add(row)
        except IntegrityError:
            return False
        return True

    def deliveries(self, *, managed_id: int | None = None) -> list[Delivery]:
        stmt = select(NotificationRow).order_by(NotificationRow.id)
        if managed_id is not None:
            stmt = stmt.where(NotificationRow.managed_id == managed_id)
        with self._read() as s:
            return [_delivery(r) for r in s.scalars(stmt)]

    def claim_deliveries(self, *, owner: str, lease: dt.timedelta,
                         now: dt.datetime | None = None) -> list[Delivery]:
        """Deliveries to (re)try now, each leased to ``owner`` so no two senders send one."""
        now = now or _now()
        with self._read() as s:
            ids = list(s.scalars(select(NotificationRow.id).where(
                NotificationRow.status != str(DeliveryStatus.SENT),
                or_(NotificationRow.next_attempt_at.is_(None),
                    NotificationRow.next_attempt_at <= now),
                _free(NotificationRow.lease_until, now)).order_by(NotificationRow.id)))
        out: list[Delivery] = []
        for nid in ids:
            with self._write() as s:
                res = s.execute(update(NotificationRow).where(
                    NotificationRow.id == nid, NotificationRow.status != str(DeliveryStatus.SENT),
                    _free(NotificationRow.lease_until, now)).values(
                    lease_until=now + lease).execution_options(synchronize_session=False))
                if getattr(res, "rowcount", 0) != 1:
                    continue
                row = s.get(NotificationRow, nid)
                if row is not None:
                    out.append(_delivery(row))
        return out

    def delivered(self, delivery_id: int) -> None:
        with self._write() as s:
            row = s.get(NotificationRow, delivery_id)
            if row is not None:
                row.status, row.sent_at = str(DeliveryStatus.SENT), _now()
                row.attempts += 1
                row.lease_until = row.next_attempt_at = None
                row.last_error = None

    def delivery_failed(self, delivery_id: int, *, reason: str,
                        next_attempt_at: dt.datetime) -> None:
        with self._write() as s:
            row = s.get(NotificationRow, delivery_id)
            if row is not None:
                row.status, row.last_error = str(DeliveryStatus.FAILING), reason[:500]
                row.attempts += 1
                row.next_attempt_at, row.lease_until = next_attempt_at, None

    # --- the agent's jobs --------------------------------------------------------------

    def job(self, name: str) -> JobState | None:
        with self._read() as s:
            r = s.get(JobRow, name)
            return None if r is None else JobState(name=r.name, last_run_at=r.last_run_at,
                                                   next_run_at=r.next_run_at,
                                                   last_outcome=r.last_outcome)

    def claim_job(self, name: str, *, owner: str, lease: dt.timedelta, now: dt.datetime,
                  next_run_at: dt.datetime, force: bool = False) -> bool:
        """Take one run of job ``name`` if it is due (or ``force``) and nobody runs it; the
        next run time is set in the same statement, so two agents never both run one slot."""
        try:
            with self._write() as s:
                if s.get(JobRow, name) is None:
                    s.add(JobRow(name=name))
        except IntegrityError:
            pass  # another agent created it first
        conds = [JobRow.name == name, _free(JobRow.lease_until, now)]
        if not force:
            conds.append(or_(JobRow.next_run_at.is_(None), JobRow.next_run_at <= now))
        with self._write() as s:
            res = s.execute(update(JobRow).where(*conds).values(
                lease_owner=owner, lease_until=now + lease, next_run_at=next_run_at)
                .execution_options(synchronize_session=False))
            return bool(getattr(res, "rowcount", 0) == 1)

    def job_done(self, name: str, *, owner: str, outcome: str) -> None:
        with self._write() as s:
            s.execute(update(JobRow).where(JobRow.name == name, JobRow.lease_owner == owner)
                      .values(last_run_at=_now(), last_outcome=outcome[:500], lease_owner=None,
                              lease_until=None).execution_options(synchronize_session=False))

    # --- plumbing ----------------------------------------------------------------------

    def _write(self) -> Transaction:
        return Transaction(self._sessions(), commit=True)

    def _read(self) -> Transaction:
        return Transaction(self._sessions(), commit=False)


__all__ = ["ManagedStore"]
