"""The inventory: every certificate found, where, when, by which scan; and what changed.

Sources write through ``Inventory.record(kind, targets)``, a ``Recorder`` (store/recorder.py)
that streams sightings and outcomes in committed batches (``batch_size``), so a scan killed
half-way keeps everything written before the last commit. Re-running a scan
adds no duplicate certificate, location or sighting; it adds an observation row per
sighting, moves ``last_seen`` forward and records changes (``new``, ``changed`` — another
leaf now served at a location —, ``gone`` — a location a comparable earlier scan found and
this one did not —, ``back``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from certwarden.errors import UsageError
from certwarden.records import Location, Outcome, OutcomeStatus, Sighting
from certwarden.store.db import make_engine, session_factory
from certwarden.store.inventory_records import (
    Change,
    RecordedOutcome,
    ScanDiff,
    ScanSummary,
    StoreError,
    Transaction,
    fill_context,
    to_sighting,
    to_summary,
)
from certwarden.store.inventory_tables import (
    CertificateRow,
    ChangeRow,
    LocationRow,
    ObservationRow,
    OutcomeRow,
    OwnerRow,
    ScanRow,
    SightingRow,
    TagRow,
)
from certwarden.store.recorder import Recorder
from certwarden.x509 import Certificate

# Big enough that a commit costs little per sighting, small enough that a SIGKILL loses
# at most a fraction of a second of a fast scan.
DEFAULT_BATCH = 100
_IN_CHUNK = 500  # bound parameters per IN (...) query: well under SQLite's 32766 limit


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _uri_key(uri: str) -> str:
    return hashlib.sha256(uri.encode("utf-8", "surrogateescape")).hexdigest()


def _targets_key(targets: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(targets)).encode()).hexdigest()


def _chunks(items: Sequence[Any], n: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class Inventory:
    """The inventory database. Open with ``Inventory.open(url)``; close when done."""

    def __init__(self, engine: Engine, *, batch_size: int = DEFAULT_BATCH) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._batch = max(1, batch_size)
        self._recorders: dict[int, Recorder] = {}  # open scans, by id

    @classmethod
    def open(cls, url: str | None = None, *, batch_size: int = DEFAULT_BATCH) -> Inventory:
        return cls(make_engine(url), batch_size=batch_size)

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._engine.dispose()

    # --- writing (sources use ``record``; the rest is its machinery) ---------------------

    def record(self, kind: str, targets: Sequence[str]) -> Recorder:
        """Start a scan of ``kind`` over ``targets``; use as ``with inv.record(...) as rec``."""
        return self._recorder(self.start_scan(kind, targets))

    def _recorder(self, scan_id: int) -> Recorder:
        rec = self._recorders.get(scan_id)
        if rec is None:
            rec = self._recorders[scan_id] = Recorder(self, scan_id, batch_size=self._batch)
        return rec

    def start_scan(self, kind: str, targets: Sequence[str]) -> int:
        row = ScanRow(kind=kind, targets=json.dumps(list(targets)),
                      targets_key=_targets_key(targets), started_at=_now(),
                      finished_at=None, sightings=0, errors=0)
        with self._write() as s:
            s.add(row)
            s.flush()
            scan_id = row.id
        return scan_id

    def add_sightings(self, scan_id: int, sightings: Iterable[Sighting]) -> int:
        """Store ``sightings`` (streamed) through the scan's recorder. Returns the count."""
        self._scan_row(scan_id)
        rec = self._recorder(scan_id)
        total = 0
        for sighting in sightings:
            rec.add(sighting)
            total += 1
        rec.flush()
        return total

    def record_outcome(self, scan_id: int, target: str, status: OutcomeStatus | str,
                       reason: str | None) -> None:
        """Note what happened at one target. Buffered; written with the next batch."""
        self._recorder(scan_id).add(Outcome(location=target, status=OutcomeStatus(status),
                                            reason=reason))

    def flush(self) -> None:
        for rec in list(self._recorders.values()):
            rec.flush()

    def finish_scan(self, scan_id: int) -> None:
        """Write what is buffered, mark locations that went away, stamp the end time."""
        rec = self._recorders.pop(scan_id, None)
        if rec is not None:
            rec.flush()
        now = _now()
        with self._write() as s:
            scan = self._scan_in(s, scan_id)
            seen_now = set(s.scalars(
                select(SightingRow.location_id).join(
                    ObservationRow, ObservationRow.sighting_id == SightingRow.id)
                .where(ObservationRow.scan_id == scan_id)))
            gone = self._gone_candidates(s, scan) - seen_now
            for loc_id in sorted(gone):
                loc = s.get(LocationRow, loc_id)
                if loc is None or loc.gone_at is not None:
                    continue
                loc.gone_at = now
                s.add(ChangeRow(scan_id=scan_id, location_id=loc_id, change="gone",
                                old_cert_id=loc.current_cert_id, new_cert_id=None, at=now))
            scan.finished_at = now
            self._refresh_counts(s, scan)

    def _gone_candidates(self, s: Session, scan: ScanRow) -> set[int]:
        # 1. what the latest earlier comparable scan (same kind, same targets) observed;
        prev = s.scalar(select(ScanRow.id).where(
            ScanRow.kind == scan.kind, ScanRow.targets_key == scan.targets_key,
            ScanRow.id < scan.id, ScanRow.finished_at.is_not(None))
            .order_by(ScanRow.id.desc()).limit(1))
        out: set[int] = set()
        if prev is not None:
            out |= set(s.scalars(
                select(SightingRow.location_id).join(
                    ObservationRow, ObservationRow.sighting_id == SightingRow.id)
                .where(ObservationRow.scan_id == prev)))
        # 2. any known location this scan tried and failed to reach (outcome target = URI).
        failed = list(s.scalars(select(OutcomeRow.target).where(
            OutcomeRow.scan_id == scan.id, OutcomeRow.status != "ok")))
        for chunk in _chunks([_uri_key(t) for t in failed]):
            out |= set(s.scalars(select(LocationRow.id).where(LocationRow.uri_sha256.in_(chunk))))
        return out

    def _refresh_counts(self, s: Session, scan: ScanRow) -> None:
        scan.sightings = s.scalar(select(func.count()).select_from(ObservationRow)
                                  .where(ObservationRow.scan_id == scan.id)) or 0
        scan.errors = s.scalar(select(func.count()).select_from(OutcomeRow).where(
            OutcomeRow.scan_id == scan.id, OutcomeRow.status != "ok")) or 0

    def write_batch(self, scan_id: int, sightings: Sequence[Sighting],
                    outcomes: Sequence[tuple[Outcome, dt.datetime]]) -> None:
        """Commit one batch in one transaction: the recorder's primitive (use ``record``)."""
        batch = list(sightings)
        # One retry: a concurrent writer (another worker on PostgreSQL) may have inserted the
        # same certificate or location between our lookup and our insert.
        for attempt in (1, 2):
            rows = [OutcomeRow(scan_id=scan_id, target=o.location, status=str(o.status),
                               reason=o.reason, at=at) for o, at in outcomes]
            try:
                with self._write() as s:
                    scan = self._scan_in(s, scan_id)
                    added = self._store(s, scan_id, batch) if batch else 0
                    s.add_all(rows)
                    # Counted as we go (a COUNT per batch would make long scans quadratic);
                    # finish_scan recounts exactly.
                    scan.sightings += added
                    scan.errors += sum(1 for o in rows if o.status != "ok")
                return
            except IntegrityError:
                if attempt == 2:
                    raise StoreError("inventory write conflicted twice; "
                                     "another writer holds the same rows") from None

    def _store(self, s: Session, scan_id: int, batch: list[Sighting]) -> int:
        certs: dict[str, Certificate] = {}
        for sg in batch:
            certs.setdefault(sg.certificate.sha256, sg.certificate)
            for c in sg.chain:
                certs.setdefault(c.sha256, c)
        cert_ids = self._ensure_certificates(s, certs)
        locations = {sg.location.uri: sg.location for sg in batch}
        loc_rows = self._ensure_locations(s, locations, batch)
        # Existing sightings for these locations, keyed by (loc, cert, position).
        loc_ids = [r.id for r in loc_rows.values()]
        existing: dict[tuple[int, int, int], SightingRow] = {}
        for chunk in _chunks(loc_ids):
            for row in s.scalars(select(SightingRow).where(SightingRow.location_id.in_(chunk))):
                existing[(row.location_id, row.certificate_id, row.position)] = row
        observed = set(s.scalars(select(ObservationRow.sighting_id).where(
            ObservationRow.scan_id == scan_id,
            ObservationRow.sighting_id.in_([r.id for r in existing.values()] or [-1]))))
        touched: list[SightingRow] = []
        for sg in batch:
            loc = loc_rows[sg.location.uri]
            cert_id = cert_ids[sg.certificate.sha256]
            key = (loc.id, cert_id, sg.position)
            found = existing.get(key)
            if found is None:
                row = SightingRow(location_id=loc.id, certificate_id=cert_id,
                                  position=sg.position, first_seen=sg.seen_at,
                                  last_seen=sg.seen_at, first_scan_id=scan_id,
                                  last_scan_id=scan_id)
                s.add(row)
                existing[key] = row
            else:
                row = found
                row.last_seen = max(row.last_seen, sg.seen_at)
            row.last_scan_id = scan_id
            fill_context(row, sg)
            touched.append(row)
            if sg.position == 0:
                self._track_leaf(s, scan_id, loc, cert_id, sg.seen_at)
        s.flush()  # one multi-row INSERT for the new sightings, not one per sighting
        new_obs = [ObservationRow(scan_id=scan_id, sighting_id=sid)
                   for sid in dict.fromkeys(r.id for r in touched) if sid not in observed]
        s.add_all(new_obs)
        return len(new_obs)

    def _track_leaf(self, s: Session, scan_id: int, loc: LocationRow, cert_id: int,
                    seen_at: dt.datetime) -> None:
        change: str | None = None
        old = loc.current_cert_id
        if old is None:
            change = "new"
        elif loc.gone_at is not None:
            change = "back"
        elif old != cert_id:
            change = "changed"
        if change == "back" and old == cert_id:
            old = None
        if change:
            s.add(ChangeRow(scan_id=scan_id, location_id=loc.id, change=change,
                            old_cert_id=old if change != "new" else None, new_cert_id=cert_id,
                            at=seen_at))
        loc.current_cert_id = cert_id
        loc.gone_at = None
        if seen_at > loc.last_seen:
            loc.last_seen = seen_at

    def _ensure_certificates(self, s: Session, certs: dict[str, Certificate]) -> dict[str, int]:
        ids: dict[str, int] = {}
        shas = list(certs)
        for chunk in _chunks(shas):
            for sha, cid in s.execute(select(CertificateRow.sha256, CertificateRow.id)
                                      .where(CertificateRow.sha256.in_(chunk))):
                ids[sha] = cid
        now = _now()
        new_rows = [CertificateRow(sha256=c.sha256, der=c.der, subject=c.subject,
                                   issuer=c.issuer, not_after=c.not_after, kind=str(c.kind),
                                   first_seen=now)
                    for sha, c in certs.items() if sha not in ids]
        if new_rows:
            s.add_all(new_rows)
            s.flush()
            ids.update({r.sha256: r.id for r in new_rows})
        return ids

    def _ensure_locations(self, s: Session, locations: dict[str, Location],
                          batch: list[Sighting]) -> dict[str, LocationRow]:
        first_seen = {sg.location.uri: sg.seen_at for sg in reversed(batch)}
        rows: dict[str, LocationRow] = {}
        by_key = {_uri_key(uri): uri for uri in locations}
        for chunk in _chunks(list(by_key)):
            for row in s.scalars(select(LocationRow).where(LocationRow.uri_sha256.in_(chunk))):
                rows[by_key[row.uri_sha256]] = row
        for key, uri in by_key.items():
            if uri in rows:
                continue
            loc = locations[uri]
            row = LocationRow(uri_sha256=key, uri=uri, kind=str(loc.kind), host=loc.host,
                              port=loc.port, sni=loc.sni, starttls=loc.starttls, path=loc.path,
                              first_seen=first_seen[uri], last_seen=first_seen[uri])
            s.add(row)
            rows[uri] = row
        s.flush()
        return rows

    def set_owner(self, location_uri: str, owner: str, contact: str | None = None) -> None:
        with self._write() as s:
            loc = self._location(s, location_uri)
            row = s.scalar(select(OwnerRow).where(OwnerRow.name == owner))
            if row is None:
                row = OwnerRow(name=owner, contact=contact)
                s.add(row)
                s.flush()
            elif contact is not None:
                row.contact = contact
            loc.owner_id = row.id

    def owners(self) -> dict[str, tuple[str, str | None]]:
        """Location URI -> (team, contact) for every location with a recorded owner."""
        with self._read() as s:
            rows = s.execute(select(LocationRow.uri, OwnerRow.name, OwnerRow.contact)
                             .join(OwnerRow, OwnerRow.id == LocationRow.owner_id))
            return {uri: (name, contact) for uri, name, contact in rows}

    def location_uris(self) -> list[str]:
        with self._read() as s:
            return list(s.scalars(select(LocationRow.uri).order_by(LocationRow.uri)))

    def add_tag(self, location_uri: str, tag: str) -> None:
        with self._write() as s:
            loc = self._location(s, location_uri)
            if s.scalar(select(TagRow.id).where(TagRow.location_id == loc.id,
                                                TagRow.tag == tag)) is None:
                s.add(TagRow(location_id=loc.id, tag=tag))

    def _location(self, s: Session, uri: str) -> LocationRow:
        loc = s.scalar(select(LocationRow).where(LocationRow.uri_sha256 == _uri_key(uri)))
        if loc is None:
            raise UsageError(f"no location {uri!r} in the inventory")
        return loc

    # --- reading -----------------------------------------------------------------------

    def has_certificate(self, sha256: str) -> bool:
        with self._read() as s:
            return s.scalar(select(CertificateRow.id).where(
                CertificateRow.sha256 == sha256.lower())) is not None

    def certificates(self) -> Iterator[Certificate]:
        with self._read() as s:
            rows = s.execute(select(CertificateRow.sha256, CertificateRow.der)
                             .order_by(CertificateRow.id)).all()
        for sha, der in rows:
            yield Certificate.from_der(bytes(der), source=f"inventory:{sha[:16]}")

    def sightings(self, latest_only: bool = True) -> Iterator[Sighting]:
        """Every sighting; with ``latest_only``, what each present location serves now."""
        with self._read() as s:
            stmt = (select(SightingRow, LocationRow, CertificateRow)
                    .join(LocationRow, LocationRow.id == SightingRow.location_id)
                    .join(CertificateRow, CertificateRow.id == SightingRow.certificate_id)
                    .order_by(LocationRow.uri, SightingRow.position, SightingRow.id))
            if latest_only:
                latest = (select(SightingRow.location_id,
                                 func.max(SightingRow.last_scan_id).label("scan"))
                          .group_by(SightingRow.location_id).subquery())
                stmt = stmt.join(latest, (latest.c.location_id == SightingRow.location_id)
                                 & (latest.c.scan == SightingRow.last_scan_id)
                                 ).where(LocationRow.gone_at.is_(None))
            rows = s.execute(stmt).all()
            chain_shas = {h for sr, _, _ in rows for h in json.loads(sr.chain)}
            ders: dict[str, bytes] = {}
            for chunk in _chunks(sorted(chain_shas)):
                ders.update((sha, bytes(der)) for sha, der in s.execute(
                    select(CertificateRow.sha256, CertificateRow.der)
                    .where(CertificateRow.sha256.in_(chunk))))
            parsed: dict[str, Certificate] = {}

            def cert(sha: str, der: bytes) -> Certificate:
                if sha not in parsed:
                    parsed[sha] = Certificate.from_der(der, source=f"inventory:{sha[:16]}")
                return parsed[sha]

            out = [to_sighting(sr, lr, cert(cr.sha256, bytes(cr.der)),
                             tuple(cert(h, ders[h]) for h in json.loads(sr.chain) if h in ders))
                   for sr, lr, cr in rows]
        yield from out

    def scans(self) -> list[ScanSummary]:
        with self._read() as s:
            return [to_summary(r) for r in s.scalars(select(ScanRow).order_by(ScanRow.id))]

    def scan(self, scan_id: int) -> ScanSummary:
        with self._read() as s:
            return to_summary(self._scan_in(s, scan_id))

    def outcomes(self, scan_id: int) -> list[RecordedOutcome]:
        with self._read() as s:
            return [RecordedOutcome(target=r.target, status=r.status, reason=r.reason, at=r.at)
                    for r in s.scalars(select(OutcomeRow).where(OutcomeRow.scan_id == scan_id)
                                       .order_by(OutcomeRow.id))]

    def changes(self, scan_id: int | None = None) -> list[Change]:
        old, new = aliased(CertificateRow), aliased(CertificateRow)
        stmt = (select(ChangeRow, LocationRow.uri, old.sha256, new.sha256)
                .join(LocationRow, LocationRow.id == ChangeRow.location_id)
                .outerjoin(old, old.id == ChangeRow.old_cert_id)
                .outerjoin(new, new.id == ChangeRow.new_cert_id).order_by(ChangeRow.id))
        if scan_id is not None:
            stmt = stmt.where(ChangeRow.scan_id == scan_id)
        with self._read() as s:
            return [Change(scan_id=c.scan_id, location=uri, change=c.change, old_sha256=o,
                           new_sha256=n, at=c.at) for c, uri, o, n in s.execute(stmt)]

    def diff(self, scan_a: int, scan_b: int) -> ScanDiff:
        """What scan B found compared with scan A, by location and leaf certificate."""
        with self._read() as s:
            a, b = self._leaves(s, scan_a), self._leaves(s, scan_b)
        new = tuple(sorted((u, b[u]) for u in b.keys() - a.keys()))
        gone = tuple(sorted((u, a[u]) for u in a.keys() - b.keys()))
        both = sorted(a.keys() & b.keys())
        changed = tuple((u, a[u], b[u]) for u in both if a[u] != b[u])
        return ScanDiff(scan_a=scan_a, scan_b=scan_b, new=new, gone=gone, changed=changed,
                        unchanged=len(both) - len(changed))

    def _leaves(self, s: Session, scan_id: int) -> dict[str, str]:
        self._scan_in(s, scan_id)
        rows = s.execute(
            select(LocationRow.uri, CertificateRow.sha256)
            .select_from(ObservationRow)
            .join(SightingRow, SightingRow.id == ObservationRow.sighting_id)
            .join(LocationRow, LocationRow.id == SightingRow.location_id)
            .join(CertificateRow, CertificateRow.id == SightingRow.certificate_id)
            .where(ObservationRow.scan_id == scan_id, SightingRow.position == 0))
        return dict(rows.all())

    # --- plumbing ----------------------------------------------------------------------

    def _scan_row(self, scan_id: int) -> None:
        with self._read() as s:
            self._scan_in(s, scan_id)

    @staticmethod
    def _scan_in(s: Session, scan_id: int) -> ScanRow:
        # Ids are 64-bit: a bigger number is no scan, not a driver OverflowError.
        row = s.get(ScanRow, scan_id) if -(2**63) <= scan_id < 2**63 else None
        if row is None:
            raise UsageError(f"no scan {scan_id} in the inventory")
        return row

    def _write(self) -> Transaction:
        return Transaction(self._sessions(), commit=True)

    def _read(self) -> Transaction:
        return Transaction(self._sessions(), commit=False)


__all__ = ["DEFAULT_BATCH", "Change", "Inventory", "RecordedOutcome", "Recorder", "ScanDiff",
           "ScanSummary", "StoreError"]
