"""``SqlLedger``: the CA's ``Ledger`` over the inventory database (SQLite or PostgreSQL).

Every write commits before it returns: on SQLite that is a WAL commit with the default
``synchronous=FULL`` (fsync), on PostgreSQL a normal commit. A crash after a method returned
can therefore not lose what it wrote (the SIGKILL test checks this end to end).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from certwarden.ca.errors import DuplicateSerial, NotFound
from certwarden.ca.model import (
    AuditAction,
    AuditEvent,
    CrlRecord,
    Issued,
    Issuer,
    IssuerRole,
    Revocation,
    RevocationReason,
)
from certwarden.store.ca_tables import (
    CaAuditRow,
    CaCrlRow,
    CaIssuedRow,
    CaIssuerRow,
    CaRevocationRow,
    CaSettingRow,
)
from certwarden.store.db import make_engine, session_factory


def _issuer(row: CaIssuerRow) -> Issuer:
    return Issuer(name=row.name, role=IssuerRole(row.role), certificate_der=row.certificate_der,
                  key_ref=row.key_ref, parent=row.parent, created_at=row.created_at)


def _issued(row: CaIssuedRow) -> Issued:
    return Issued(serial=row.serial, issuer=row.issuer, subject=row.subject,
                  names=tuple(json.loads(row.names)), profile=row.profile,
                  not_before=row.not_before, not_after=row.not_after,
                  certificate_der=row.certificate_der, sha256=row.sha256,
                  requested_by=row.requested_by, issued_at=row.issued_at)


def _revocation(row: CaRevocationRow) -> Revocation:
    return Revocation(serial=row.serial, issuer=row.issuer, reason=RevocationReason(row.reason),
                      revoked_at=row.revoked_at, revoked_by=row.revoked_by)


def _audit_values(e: AuditEvent) -> dict[str, Any]:
    return {"at": e.at, "actor": e.actor, "action": e.action.value, "issuer": e.issuer,
            "serial": e.serial, "detail": e.detail}


class SqlLedger:
    """The SQL ``Ledger``. Thread-safe: one short session per call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = session_factory(engine)

    @classmethod
    def open(cls, url: str) -> SqlLedger:
        return cls(make_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    # -- issuers -------------------------------------------------------------------------
    def add_issuer(self, issuer: Issuer, *, event: AuditEvent) -> None:
        try:
            with self._session.begin() as s:
                s.add(CaIssuerRow(name=issuer.name, role=issuer.role.value,
                                  certificate_der=issuer.certificate_der,
                                  key_ref=issuer.key_ref, parent=issuer.parent,
                                  created_at=issuer.created_at))
                s.flush()
                s.execute(insert(CaAuditRow), [_audit_values(event)])
        except IntegrityError:
            raise DuplicateSerial(f"issuer {issuer.name!r} already exists") from None

    def issuer(self, name: str) -> Issuer | None:
        with self._session() as s:
            row = s.get(CaIssuerRow, name)
            return _issuer(row) if row else None

    def issuers(self) -> list[Issuer]:
        with self._session() as s:
            rows = s.scalars(select(CaIssuerRow).order_by(CaIssuerRow.created_at,
                                                          CaIssuerRow.name))
            return [_issuer(r) for r in rows]

    # -- issued --------------------------------------------------------------------------
    def record_issued(self, items: Sequence[Issued], *, events: Sequence[AuditEvent]) -> None:
        rows = [{"serial": i.serial, "issuer": i.issuer, "subject": i.subject,
                 "names": json.dumps(list(i.names)), "profile": i.profile,
                 "not_before": i.not_before, "not_after": i.not_after,
                 "certificate_der": i.certificate_der, "sha256": i.sha256,
                 "requested_by": i.requested_by, "issued_at": i.issued_at} for i in items]
        try:
            with self.engine.begin() as conn:
                if rows:
                    conn.execute(insert(CaIssuedRow), rows)
                if events:
                    conn.execute(insert(CaAuditRow), [_audit_values(e) for e in events])
        except IntegrityError as exc:
            raise DuplicateSerial(f"the database refused a duplicate: "
                                  f"{str(exc.orig).splitlines()[0]}") from None

    def issued(self, serial: str) -> Issued | None:
        with self._session() as s:
            row = s.get(CaIssuedRow, serial)
            return _issued(row) if row else None

    def list_issued(self, *, issuer: str | None = None, limit: int | None = None,
                    ) -> Iterator[tuple[Issued, Revocation | None]]:
        q = (select(CaIssuedRow, CaRevocationRow)
             .outerjoin(CaRevocationRow, CaRevocationRow.serial == CaIssuedRow.serial)
             .order_by(CaIssuedRow.issued_at.desc(), CaIssuedRow.serial))
        if issuer:
            q = q.where(CaIssuedRow.issuer == issuer)
        if limit:
            q = q.limit(limit)
        with self._session() as s:
            rows = s.execute(q).all()
        for issued, rev in rows:
            yield _issued(issued), _revocation(rev) if rev else None

    # -- revocation ----------------------------------------------------------------------
    def revoke(self, revocation: Revocation, *, event: AuditEvent) -> Revocation:
        with self._session.begin() as s:
            if s.get(CaIssuedRow, revocation.serial) is None:
                raise NotFound(f"serial {revocation.serial} was not issued by this CA")
            existing = s.scalars(select(CaRevocationRow).where(
                CaRevocationRow.serial == revocation.serial)).first()
            if existing is not None:
                return _revocation(existing)
            s.add(CaRevocationRow(serial=revocation.serial, issuer=revocation.issuer,
                                  reason=revocation.reason.value,
                                  revoked_at=revocation.revoked_at,
                                  revoked_by=revocation.revoked_by))
            s.execute(insert(CaAuditRow), [_audit_values(event)])
        return revocation

    def revocation(self, serial: str) -> Revocation | None:
        with self._session() as s:
            row = s.scalars(select(CaRevocationRow).where(
                CaRevocationRow.serial == serial)).first()
            return _revocation(row) if row else None

    def revocations(self, issuer: str) -> list[Revocation]:
        with self._session() as s:
            rows = s.scalars(select(CaRevocationRow).where(CaRevocationRow.issuer == issuer)
                             .order_by(CaRevocationRow.id))
            return [_revocation(r) for r in rows]

    def revision(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(CaRevocationRow))
                       .scalar_one())

    # -- CRLs ----------------------------------------------------------------------------
    def record_crl(self, crl: CrlRecord, *, event: AuditEvent) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(CaCrlRow), [{
                    "issuer": crl.issuer, "number": crl.number, "this_update": crl.this_update,
                    "next_update": crl.next_update, "der": crl.der}])
                conn.execute(insert(CaAuditRow), [_audit_values(event)])
        except IntegrityError:
            raise DuplicateSerial(f"CRL number {crl.number} of {crl.issuer} exists") from None

    def last_crl_number(self, issuer: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(CaCrlRow.number))
                                 .where(CaCrlRow.issuer == issuer)).scalar_one()
            return int(value or 0)

    def latest_crl(self, issuer: str) -> CrlRecord | None:
        with self._session() as s:
            row = s.scalars(select(CaCrlRow).where(CaCrlRow.issuer == issuer)
                            .order_by(CaCrlRow.number.desc()).limit(1)).first()
            if row is None:
                return None
            return CrlRecord(issuer=row.issuer, number=row.number, this_update=row.this_update,
                             next_update=row.next_update, der=row.der)

    # -- audit and settings --------------------------------------------------------------
    def audit(self, event: AuditEvent) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(CaAuditRow), [_audit_values(event)])

    def audit_events(self, *, limit: int = 100) -> list[AuditEvent]:
        with self._session() as s:
            rows = s.scalars(select(CaAuditRow).order_by(CaAuditRow.id.desc()).limit(limit))
            return [AuditEvent(at=r.at, actor=r.actor, action=AuditAction(r.action),
                               issuer=r.issuer, serial=r.serial, detail=r.detail) for r in rows]

    def get_setting(self, key: str) -> dict[str, Any] | None:
        with self._session() as s:
            row = s.get(CaSettingRow, key)
            return dict(json.loads(row.value)) if row else None

    def put_setting(self, key: str, value: dict[str, Any]) -> None:
        with self._session.begin() as s:
            s.merge(CaSettingRow(key=key, value=json.dumps(value, sort_keys=True)))
