"""The ACME server's database (implements ``certwarden.acme.storage.AcmeStore``).

Every state change is one short transaction; status transitions are ``UPDATE ... WHERE
status IN (...)`` compare-and-set statements, so two requests racing on one order (two
finalize calls, two challenge validations) cannot both win, and an account's orders are
rows keyed by account, never a read-modify-written list (step-ca's lost-update bug).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certwarden.store.acme_tables import (
    AcmeAccountRow,
    AcmeAuthzRow,
    AcmeCertificateRow,
    AcmeChallengeRow,
    AcmeEabKeyRow,
    AcmeOrderRow,
)
from certwarden.store.db import Base, make_engine, session_factory

Row = dict[str, Any]


def _sqlite_normal_sync(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _changed(result: Any) -> bool:
    """Whether an UPDATE matched a row (the compare-and-set outcome)."""
    return bool(result.rowcount)


def _row(obj: Base) -> Row:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


class AcmeRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = session_factory(engine)
        # SQLite has one writer at a time; threads that queue on a Python lock wait for
        # exactly as long as needed, where SQLite's busy handler sleeps in growing steps.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext())

    @contextlib.contextmanager
    def _write(self) -> Iterator[Session]:
        with self._write_lock, self._session.begin() as s:
            yield s

    @classmethod
    def open(cls, url: str | None = None) -> AcmeRepo:
        engine = make_engine(url)
        if engine.dialect.name == "sqlite":
            # WAL + synchronous=NORMAL: a commit survives a process crash or restart (the WAL
            # is written before commit returns) and skips the fsync per commit that otherwise
            # caps an ACME server at a few dozen orders/s; only power loss can drop the last
            # transactions, which clients recover from by retrying the order.
            event.listen(engine, "connect", _sqlite_normal_sync)
            engine.dispose()
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # accounts ---------------------------------------------------------------------------
    def add_account(self, row: Mapping[str, Any]) -> tuple[Row, bool]:
        try:
            with self._write() as s:
                s.add(AcmeAccountRow(**row))
        except IntegrityError:
            existing = self.account_by_thumbprint(row["thumbprint"])
            if existing is None:  # pragma: no cover - an id collision of 128 random bits
                raise
            return existing, False
        return dict(row), True

    def account(self, account_id: str) -> Row | None:
        with self._session() as s:
            obj = s.get(AcmeAccountRow, account_id)
            return _row(obj) if obj else None

    def account_by_thumbprint(self, thumbprint: str) -> Row | None:
        with self._session() as s:
            obj = s.scalars(select(AcmeAccountRow).where(
                AcmeAccountRow.thumbprint == thumbprint)).first()
            return _row(obj) if obj else None

    def update_account(self, account_id: str, **fields: Any) -> Row | None:
        with self._write() as s:
            obj = s.get(AcmeAccountRow, account_id)
            if obj is None:
                return None
            for key, value in fields.items():
                setattr(obj, key, value)
            s.flush()
            return _row(obj)

    def change_account_key_if(self, account_id: str, *, old_thumbprint: str,
                              jwk: Mapping[str, Any], thumbprint: str) -> bool:
        try:
            with self._write() as s:
                res = s.execute(update(AcmeAccountRow).where(
                    AcmeAccountRow.id == account_id,
                    AcmeAccountRow.thumbprint == old_thumbprint,
                ).values(jwk=dict(jwk), thumbprint=thumbprint))
                return _changed(res)
        except IntegrityError:
            return False

    # orders -----------------------------------------------------------------------------
    def add_order(self, order: Mapping[str, Any], authzs: Sequence[Mapping[str, Any]],
                  challenges: Sequence[Mapping[str, Any]]) -> None:
        with self._write() as s:
            s.add(AcmeOrderRow(**order))
            s.flush()
            s.add_all([AcmeAuthzRow(**a) for a in authzs])
            s.flush()
            s.add_all([AcmeChallengeRow(**c) for c in challenges])

    def order(self, order_id: str) -> Row | None:
        with self._session() as s:
            obj = s.get(AcmeOrderRow, order_id)
            if obj is None:
                return None
            row = _row(obj)
            row["authz_ids"] = list(s.scalars(select(AcmeAuthzRow.id).where(
                AcmeAuthzRow.order_id == order_id).order_by(AcmeAuthzRow.position)))
            return row

    def order_ids(self, account_id: str, *, offset: int, limit: int) -> list[str]:
        with self._session() as s:
            return list(s.scalars(
                select(AcmeOrderRow.id).where(AcmeOrderRow.account_id == account_id)
                .order_by(AcmeOrderRow.created_at, AcmeOrderRow.id).offset(offset).limit(limit)))

    def set_order_status_if(self, order_id: str, *, expect: Sequence[str], status: str,
                            error: Mapping[str, Any] | None = None) -> bool:
        values: dict[str, Any] = {"status": status}
        if error is not None:
            values["error"] = dict(error)
        with self._write() as s:
            res = s.execute(update(AcmeOrderRow).where(
                AcmeOrderRow.id == order_id, AcmeOrderRow.status.in_(list(expect))).values(values))
            return _changed(res)

    # authorizations and challenges ------------------------------------------------------
    def _authz_rows(self, s: Any, authz_objs: Sequence[AcmeAuthzRow]) -> list[Row]:
        ids = [a.id for a in authz_objs]
        chall: dict[str, list[Row]] = {i: [] for i in ids}
        if ids:
            for c in s.scalars(select(AcmeChallengeRow).where(AcmeChallengeRow.authz_id.in_(ids))
                               .order_by(AcmeChallengeRow.position)):
                chall[c.authz_id].append(_row(c))
        out = []
        for a in authz_objs:
            row = _row(a)
            row["challenges"] = chall[a.id]
            out.append(row)
        return out

    def authz(self, authz_id: str) -> Row | None:
        with self._session() as s:
            obj = s.get(AcmeAuthzRow, authz_id)
            return self._authz_rows(s, [obj])[0] if obj else None

    def authzs_of_order(self, order_id: str) -> list[Row]:
        with self._session() as s:
            objs = list(s.scalars(select(AcmeAuthzRow).where(AcmeAuthzRow.order_id == order_id)
                                  .order_by(AcmeAuthzRow.position)))
            return self._authz_rows(s, objs)

    def set_authz_status_if(self, authz_id: str, *, expect: Sequence[str], status: str) -> bool:
        with self._write() as s:
            res = s.execute(update(AcmeAuthzRow).where(
                AcmeAuthzRow.id == authz_id, AcmeAuthzRow.status.in_(list(expect)))
                .values(status=status))
            return _changed(res)

    def challenge(self, challenge_id: str) -> Row | None:
        with self._session() as s:
            obj = s.get(AcmeChallengeRow, challenge_id)
            return _row(obj) if obj else None

    def set_challenge_if(self, challenge_id: str, *, expect: Sequence[str], status: str,
                         error: Mapping[str, Any] | None = None,
                         validated: dt.datetime | None = None) -> bool:
        values: dict[str, Any] = {"status": status}
        if error is not None:
            values["error"] = dict(error)
        if validated is not None:
            values["validated"] = validated
        with self._write() as s:
            res = s.execute(update(AcmeChallengeRow).where(
                AcmeChallengeRow.id == challenge_id,
                AcmeChallengeRow.status.in_(list(expect))).values(values))
            return _changed(res)

    # certificates -----------------------------------------------------------------------
    def finish_order(self, order_id: str, cert: Mapping[str, Any]) -> None:
        with self._write() as s:
            s.add(AcmeCertificateRow(**cert))
            s.flush()
            res = s.execute(update(AcmeOrderRow).where(
                AcmeOrderRow.id == order_id, AcmeOrderRow.status == "processing")
                .values(status="valid", cert_id=cert["id"]))
            if not _changed(res):
                raise RuntimeError(f"order {order_id} left 'processing' during issuance")

    def certificate(self, cert_id: str) -> Row | None:
        with self._session() as s:
            obj = s.get(AcmeCertificateRow, cert_id)
            return _row(obj) if obj else None

    def certificate_by(self, *, sha256: str | None = None, ari_id: str | None = None
                       ) -> Row | None:
        q = select(AcmeCertificateRow)
        if sha256 is not None:
            q = q.where(AcmeCertificateRow.sha256 == sha256)
        elif ari_id is not None:
            q = q.where(AcmeCertificateRow.ari_id == ari_id)
        else:
            raise TypeError("certificate_by needs sha256 or ari_id")
        with self._session() as s:
            obj = s.scalars(q).first()
            return _row(obj) if obj else None

    def mark_replaced_if(self, cert_id: str, *, order_id: str) -> bool:
        with self._write() as s:
            res = s.execute(update(AcmeCertificateRow).where(
                AcmeCertificateRow.id == cert_id, AcmeCertificateRow.replaced_by.is_(None))
                .values(replaced_by=order_id))
            return _changed(res)

    def revoke_certificate_if(self, cert_id: str, *, reason: int, at: dt.datetime) -> bool:
        with self._write() as s:
            res = s.execute(update(AcmeCertificateRow).where(
                AcmeCertificateRow.id == cert_id, AcmeCertificateRow.revoked_at.is_(None))
                .values(revoked_at=at, revocation_reason=reason))
            return _changed(res)

    # external account binding -----------------------------------------------------------
    def add_eab_key(self, kid: str, hmac_key: bytes) -> None:
        with self._write() as s:
            s.add(AcmeEabKeyRow(kid=kid, hmac_key=hmac_key, created_at=dt.datetime.now(dt.UTC)))

    def eab_key(self, kid: str) -> Row | None:
        with self._session() as s:
            obj = s.get(AcmeEabKeyRow, kid)
            return _row(obj) if obj else None

    def bind_eab_if(self, kid: str, account_id: str) -> bool:
        with self._write() as s:
            res = s.execute(update(AcmeEabKeyRow).where(
                AcmeEabKeyRow.kid == kid, AcmeEabKeyRow.account_id.is_(None))
                .values(account_id=account_id))
            return _changed(res)
