"""The ACME server's database (implements ``certwarden.acme.storage.AcmeStore``).

Rows never leave this module: reads return ``acme.model`` records, writes take them.

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
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from certwarden.acme.model import (
    Account,
    Authorization,
    Challenge,
    EabKey,
    IssuedCertificate,
    Order,
)
from certwarden.store.acme_tables import (
    AcmeAccountRow,
    AcmeAuthzRow,
    AcmeCertificateRow,
    AcmeChallengeRow,
    AcmeEabKeyRow,
    AcmeOrderRow,
    AcmeSecretRow,
    AcmeUsedNonceRow,
)
from certwarden.store.db import make_engine

Row = dict[str, Any]
ACCOUNTS = cast(Table, AcmeAccountRow.__table__)
ORDERS = cast(Table, AcmeOrderRow.__table__)
AUTHZS = cast(Table, AcmeAuthzRow.__table__)
CHALLENGES = cast(Table, AcmeChallengeRow.__table__)
CERTS = cast(Table, AcmeCertificateRow.__table__)
EAB_KEYS = cast(Table, AcmeEabKeyRow.__table__)
USED_NONCES = cast(Table, AcmeUsedNonceRow.__table__)
SECRETS = cast(Table, AcmeSecretRow.__table__)


def _sqlite_normal_sync(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _changed(result: Any) -> bool:
    """Whether an UPDATE matched a row (the compare-and-set outcome)."""
    return bool(result.rowcount)


def _set(row: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """``row`` plus the optional columns that have a value (a JSON column given None would
    store JSON ``null``, not SQL NULL)."""
    row.update({k: v for k, v in optional.items() if v is not None})
    return row


def _account_row(a: Account) -> dict[str, Any]:
    return {"id": a.id, "thumbprint": a.thumbprint, "jwk": dict(a.jwk), "status": a.status.value,
            "contact": list(a.contact), "tos_agreed": a.tos_agreed, "eab_kid": a.eab_kid,
            "created_at": a.created_at}


def _order_row(o: Order) -> dict[str, Any]:
    return _set({"id": o.id, "account_id": o.account_id, "status": o.status.value,
                 "identifiers": [i.as_dict() for i in o.identifiers], "profile": o.profile,
                 "expires": o.expires, "created_at": o.created_at, "not_before": o.not_before,
                 "not_after": o.not_after, "replaces": o.replaces},
                error=dict(o.error) if o.error is not None else None, cert_id=o.cert_id)


def _authz_row(a: Authorization, position: int) -> dict[str, Any]:
    return {"id": a.id, "order_id": a.order_id, "account_id": a.account_id,
            "position": position, "identifier_type": a.identifier.type.value,
            "identifier_value": a.identifier.value, "wildcard": a.wildcard,
            "status": a.status.value, "expires": a.expires}


def _challenge_row(c: Challenge, position: int) -> dict[str, Any]:
    return _set({"id": c.id, "authz_id": c.authz_id, "position": position,
                 "type": c.type.value, "token": c.token, "status": c.status.value},
                validated=c.validated, error=dict(c.error) if c.error is not None else None)


def _certificate_row(c: IssuedCertificate) -> dict[str, Any]:
    return _set({"id": c.id, "order_id": c.order_id, "account_id": c.account_id,
                 "serial": c.serial, "sha256": c.sha256, "ari_id": c.ari_id,
                 "chain_pem": c.chain_pem, "alternates": list(c.alternates),
                 "not_before": c.not_before, "not_after": c.not_after},
                revoked_at=c.revoked_at, revocation_reason=c.revocation_reason,
                replaced_by=c.replaced_by)



class AcmeRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time; threads that queue on a Python lock wait for
        # exactly as long as needed, where SQLite's busy handler sleeps in growing steps.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext())

    # Reads go through SQLAlchemy Core (no ORM identity map): about 3x cheaper per query,
    # and every ACME request starts with at least one.
    def _one(self, stmt: Any) -> Row | None:
        with self.engine.connect() as conn:
            found = conn.execute(stmt).mappings().first()
            return dict(found) if found is not None else None

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @classmethod
    def open(cls, url: str) -> AcmeRepo:
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
    def add_account(self, account: Account) -> tuple[Account, bool]:
        try:
            with self._write() as s:
                s.execute(insert(ACCOUNTS).values(**_account_row(account)))
        except IntegrityError:
            existing = self.account_by_thumbprint(account.thumbprint)
            if existing is None:  # pragma: no cover - an id collision of 128 random bits
                raise
            return existing, False
        return account, True

    def account(self, account_id: str) -> Account | None:
        row = self._one(select(ACCOUNTS).where(ACCOUNTS.c.id == account_id))
        return Account.from_row(row) if row is not None else None

    def account_by_thumbprint(self, thumbprint: str) -> Account | None:
        row = self._one(select(ACCOUNTS).where(ACCOUNTS.c.thumbprint == thumbprint))
        return Account.from_row(row) if row is not None else None

    def update_account(self, account_id: str, **fields: Any) -> Account | None:
        with self._write() as s:
            if fields:
                s.execute(update(ACCOUNTS).where(ACCOUNTS.c.id == account_id).values(**fields))
            found = s.execute(select(ACCOUNTS).where(ACCOUNTS.c.id == account_id)
                              ).mappings().first()
            return Account.from_row(dict(found)) if found is not None else None

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
    def add_order(self, order: Order, authzs: Sequence[Authorization]) -> None:
        challenges = [_challenge_row(c, pos) for a in authzs
                      for pos, c in enumerate(a.challenges)]
        with self._write() as s:
            s.execute(insert(ORDERS).values(**_order_row(order)))
            s.execute(insert(AUTHZS), [_authz_row(a, pos) for pos, a in enumerate(authzs)])
            if challenges:
                s.execute(insert(CHALLENGES), challenges)

    def order(self, order_id: str) -> Order | None:
        with self.engine.connect() as conn:
            found = conn.execute(select(ORDERS).where(ORDERS.c.id == order_id)).mappings().first()
            if found is None:
                return None
            row = dict(found)
            row["authz_ids"] = list(conn.execute(select(AUTHZS.c.id).where(
                AUTHZS.c.order_id == order_id).order_by(AUTHZS.c.position)).scalars())
            return Order.from_row(row)

    def order_ids(self, account_id: str, *, offset: int, limit: int) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(ORDERS.c.id).where(ORDERS.c.account_id == account_id)
                .order_by(ORDERS.c.created_at, ORDERS.c.id).offset(offset).limit(limit)).scalars())

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
    def _authzs(self, where: Any) -> list[Authorization]:
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(
                select(AUTHZS).where(where).order_by(AUTHZS.c.position)).mappings()]
            by_id: dict[str, Row] = {r["id"]: r for r in rows}
            for r in rows:
                r["challenges"] = []
            if by_id:
                for c in conn.execute(select(CHALLENGES).where(
                        CHALLENGES.c.authz_id.in_(list(by_id)))
                        .order_by(CHALLENGES.c.position)).mappings():
                    by_id[c["authz_id"]]["challenges"].append(dict(c))
            return [Authorization.from_row(r) for r in rows]

    def authz(self, authz_id: str) -> Authorization | None:
        found = self._authzs(AUTHZS.c.id == authz_id)
        return found[0] if found else None

    def authzs_of_order(self, order_id: str) -> list[Authorization]:
        return self._authzs(AUTHZS.c.order_id == order_id)

    def set_authz_status_if(self, authz_id: str, *, expect: Sequence[str], status: str) -> bool:
        with self._write() as s:
            res = s.execute(update(AcmeAuthzRow).where(
                AcmeAuthzRow.id == authz_id, AcmeAuthzRow.status.in_(list(expect)))
                .values(status=status))
            return _changed(res)

    def challenge(self, challenge_id: str) -> Challenge | None:
        row = self._one(select(CHALLENGES).where(CHALLENGES.c.id == challenge_id))
        return Challenge.from_row(row) if row is not None else None

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
    def finish_order(self, order_id: str, cert: IssuedCertificate) -> None:
        with self._write() as s:
            s.execute(insert(CERTS).values(**_certificate_row(cert)))
            res = s.execute(update(AcmeOrderRow).where(
                AcmeOrderRow.id == order_id, AcmeOrderRow.status == "processing")
                .values(status="valid", cert_id=cert.id))
            if not _changed(res):
                raise RuntimeError(f"order {order_id} left 'processing' during issuance")

    def certificate(self, cert_id: str) -> IssuedCertificate | None:
        row = self._one(select(CERTS).where(CERTS.c.id == cert_id))
        return IssuedCertificate.from_row(row) if row is not None else None

    def certificate_by(self, *, sha256: str | None = None, ari_id: str | None = None
                       ) -> IssuedCertificate | None:
        if sha256 is not None:
            row = self._one(select(CERTS).where(CERTS.c.sha256 == sha256))
        elif ari_id is not None:
            row = self._one(select(CERTS).where(CERTS.c.ari_id == ari_id))
        else:
            raise TypeError("certificate_by needs sha256 or ari_id")
        return IssuedCertificate.from_row(row) if row is not None else None

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

    # nonces shared by several processes -------------------------------------------------
    def secret(self, name: str, make: bytes) -> bytes:
        """The shared secret ``name``; the first process to ask stores ``make``."""
        with contextlib.suppress(IntegrityError), self._write() as s:
            s.execute(insert(SECRETS).values(name=name, value=make))
        found = self._one(select(SECRETS).where(SECRETS.c.name == name))
        assert found is not None
        return bytes(found["value"])

    def claim_nonce_if(self, nonce: str, *, expires: dt.datetime) -> bool:
        """Record ``nonce`` as used; False when it already was (a replay)."""
        try:
            with self._write() as s:
                s.execute(insert(USED_NONCES).values(nonce=nonce, expires=expires))
        except IntegrityError:
            return False
        return True

    def purge_nonces(self, *, before: dt.datetime) -> int:
        with self._write() as s:
            res = s.execute(USED_NONCES.delete().where(USED_NONCES.c.expires < before))
            return int(getattr(res, "rowcount", 0) or 0)

    # external account binding -----------------------------------------------------------
    def add_eab_key(self, kid: str, hmac_key: bytes) -> None:
        with self._write() as s:
            s.execute(insert(EAB_KEYS).values(
                kid=kid, hmac_key=hmac_key, created_at=dt.datetime.now(dt.UTC)))

    def eab_key(self, kid: str) -> EabKey | None:
        row = self._one(select(EAB_KEYS).where(EAB_KEYS.c.kid == kid))
        return EabKey.from_row(row) if row is not None else None

    def bind_eab_if(self, kid: str, account_id: str) -> bool:
        with self._write() as s:
            res = s.execute(update(AcmeEabKeyRow).where(
                AcmeEabKeyRow.kid == kid, AcmeEabKeyRow.account_id.is_(None))
                .values(account_id=account_id))
            return _changed(res)
