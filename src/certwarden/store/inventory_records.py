"""The inventory's plain records and the row <-> record edge (rows never leave ``store``)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from certwarden.errors import CertwardenError
from certwarden.records import KeyFile, Location, LocationKind, Sighting
from certwarden.store.inventory_tables import LocationRow, ScanRow, SightingRow
from certwarden.x509 import Certificate


class StoreError(CertwardenError):
    """The database refused an operation (connection lost, disk full ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanSummary:
    id: int
    kind: str
    targets: tuple[str, ...]
    started_at: dt.datetime
    finished_at: dt.datetime | None  # None: still running, or killed
    sightings: int
    errors: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedOutcome:
    """A ``records.Outcome`` as one scan stored it: the place, what happened, and when."""

    target: str
    status: str
    reason: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    scan_id: int
    location: str
    change: str  # new | changed | gone | back
    old_sha256: str | None
    new_sha256: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanDiff:
    scan_a: int
    scan_b: int
    new: tuple[tuple[str, str], ...] = ()  # (location, sha256) in B only
    gone: tuple[tuple[str, str], ...] = ()  # in A only
    changed: tuple[tuple[str, str, str], ...] = ()  # (location, sha256 in A, sha256 in B)
    unchanged: int = 0




class Transaction:
    """A session that commits (or rolls back) on exit; database failures become one line."""

    def __init__(self, session: Session, *, commit: bool) -> None:
        self._s = session
        self._commit = commit

    def __enter__(self) -> Session:
        return self._s

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        try:
            if exc_type is None and self._commit:
                try:
                    self._s.commit()
                except IntegrityError:
                    self._s.rollback()
                    raise
                except SQLAlchemyError as err:
                    self._s.rollback()
                    raise StoreError(f"inventory write failed: {_one_line(err)}") from None
            else:
                self._s.rollback()
            if isinstance(exc, SQLAlchemyError) and not isinstance(exc, IntegrityError):
                raise StoreError(f"inventory database error: {_one_line(exc)}") from None
        finally:
            self._s.close()


def _one_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    text = " ".join(str(orig).split())
    return text[:200] or type(err).__name__


def fill_context(row: SightingRow, sg: Sighting) -> None:
    row.chain = json.dumps([c.sha256 for c in sg.chain])
    row.tls_version, row.cipher, row.alpn = sg.tls_version, sg.cipher, sg.alpn
    row.file_mode, row.file_owner = sg.file_mode, sg.file_owner
    if sg.key is not None:
        row.key_path, row.key_encrypted = sg.key.path, sg.key.encrypted
        row.key_mode, row.key_owner = sg.key.mode, sg.key.owner
    else:
        row.key_path = row.key_encrypted = row.key_mode = row.key_owner = None
    row.extra = json.dumps(sg.extra, sort_keys=True)


def to_sighting(sr: SightingRow, lr: LocationRow, cert: Certificate,
              chain: tuple[Certificate, ...]) -> Sighting:
    loc = Location(kind=LocationKind(lr.kind), uri=lr.uri, host=lr.host, port=lr.port,
                   sni=lr.sni, starttls=lr.starttls, path=lr.path)
    key = None
    if sr.key_path is not None:
        key = KeyFile(path=sr.key_path, encrypted=bool(sr.key_encrypted), mode=sr.key_mode,
                      owner=sr.key_owner)
    return Sighting(certificate=cert, location=loc, seen_at=sr.last_seen, chain=chain,
                    position=sr.position, tls_version=sr.tls_version, cipher=sr.cipher,
                    alpn=sr.alpn, file_mode=sr.file_mode, file_owner=sr.file_owner, key=key,
                    extra=dict(json.loads(sr.extra or "{}")))


def to_summary(r: ScanRow) -> ScanSummary:
    return ScanSummary(id=r.id, kind=r.kind, targets=tuple(json.loads(r.targets)),
                       started_at=r.started_at, finished_at=r.finished_at,
                       sightings=r.sightings, errors=r.errors)
