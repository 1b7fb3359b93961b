"""``Ledger``: what the CA needs from persistence. The SQL one is ``store.ca_ledger``;
``MemoryLedger`` serves unit tests and shows the contract in a few lines."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from certwarden.ca.errors import DuplicateSerial, NotFound
from certwarden.ca.model import AuditEvent, CrlRecord, Issued, Issuer, Revocation


class Ledger(Protocol):
    """Durable CA state. Every write method returns only after its data is committed."""

    def add_issuer(self, issuer: Issuer, *, event: AuditEvent) -> None: ...

    def issuer(self, name: str) -> Issuer | None: ...

    def issuers(self) -> list[Issuer]: ...

    def record_issued(self, items: Sequence[Issued], *, events: Sequence[AuditEvent]) -> None:
        """Commit all ``items`` (one transaction) or none; ``DuplicateSerial`` on a clash."""
        ...

    def issued(self, serial: str) -> Issued | None: ...

    def list_issued(self, *, issuer: str | None = None, limit: int | None = None,
                    ) -> Iterator[tuple[Issued, Revocation | None]]: ...

    def revoke(self, revocation: Revocation, *, event: AuditEvent) -> Revocation:
        """Record it; an already revoked serial returns the first revocation unchanged."""
        ...

    def revocation(self, serial: str) -> Revocation | None: ...

    def revocations(self, issuer: str) -> list[Revocation]: ...

    def revision(self) -> int:
        """A number that grows whenever revocation data changes (cheap; responders poll it)."""
        ...

    def record_crl(self, crl: CrlRecord, *, event: AuditEvent) -> None: ...

    def last_crl_number(self, issuer: str) -> int: ...

    def latest_crl(self, issuer: str) -> CrlRecord | None: ...

    def audit(self, event: AuditEvent) -> None: ...

    def audit_events(self, *, limit: int = 100) -> list[AuditEvent]: ...

    def get_setting(self, key: str) -> dict[str, Any] | None: ...

    def put_setting(self, key: str, value: dict[str, Any]) -> None: ...


class MemoryLedger:
    """An in-process ``Ledger`` (nothing is durable: for tests and examples only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issuers: dict[str, Issuer] = {}
        self._issued: dict[str, Issued] = {}
        self._revoked: dict[str, Revocation] = {}
        self._crls: dict[str, list[CrlRecord]] = {}
        self._audit: list[AuditEvent] = []
        self._settings: dict[str, dict[str, Any]] = {}
        self._revision = 0

    def add_issuer(self, issuer: Issuer, *, event: AuditEvent) -> None:
        with self._lock:
            if issuer.name in self._issuers:
                raise DuplicateSerial(f"issuer {issuer.name!r} exists")
            self._issuers[issuer.name] = issuer
            self._audit.append(event)

    def issuer(self, name: str) -> Issuer | None:
        return self._issuers.get(name)

    def issuers(self) -> list[Issuer]:
        return sorted(self._issuers.values(), key=lambda i: i.created_at)

    def record_issued(self, items: Sequence[Issued], *, events: Sequence[AuditEvent]) -> None:
        with self._lock:
            for it in items:
                if it.serial in self._issued:
                    raise DuplicateSerial(f"serial {it.serial} already issued")
            for it in items:
                self._issued[it.serial] = it
            self._audit.extend(events)

    def issued(self, serial: str) -> Issued | None:
        return self._issued.get(serial)

    def list_issued(self, *, issuer: str | None = None, limit: int | None = None,
                    ) -> Iterator[tuple[Issued, Revocation | None]]:
        rows = [i for i in self._issued.values() if issuer is None or i.issuer == issuer]
        rows.sort(key=lambda i: i.issued_at, reverse=True)
        for it in rows[:limit]:
            yield it, self._revoked.get(it.serial)

    def revoke(self, revocation: Revocation, *, event: AuditEvent) -> Revocation:
        with self._lock:
            if revocation.serial not in self._issued:
                raise NotFound(f"serial {revocation.serial} was not issued by this CA")
            if revocation.serial in self._revoked:
                return self._revoked[revocation.serial]
            self._revoked[revocation.serial] = revocation
            self._revision += 1
            self._audit.append(event)
            return revocation

    def revocation(self, serial: str) -> Revocation | None:
        return self._revoked.get(serial)

    def revocations(self, issuer: str) -> list[Revocation]:
        return [r for r in self._revoked.values() if r.issuer == issuer]

    def revision(self) -> int:
        return self._revision

    def record_crl(self, crl: CrlRecord, *, event: AuditEvent) -> None:
        with self._lock:
            if crl.number <= self.last_crl_number(crl.issuer):
                raise DuplicateSerial(f"CRL number {crl.number} is not above the last")
            self._crls.setdefault(crl.issuer, []).append(crl)
            self._audit.append(event)

    def last_crl_number(self, issuer: str) -> int:
        crls = self._crls.get(issuer)
        return crls[-1].number if crls else 0

    def latest_crl(self, issuer: str) -> CrlRecord | None:
        crls = self._crls.get(issuer)
        return crls[-1] if crls else None

    def audit(self, event: AuditEvent) -> None:
        self._audit.append(event)

    def audit_events(self, *, limit: int = 100) -> list[AuditEvent]:
        return list(reversed(self._audit))[:limit]

    def get_setting(self, key: str) -> dict[str, Any] | None:
        return self._settings.get(key)

    def put_setting(self, key: str, value: dict[str, Any]) -> None:
        self._settings[key] = dict(value)
