"""SqlLedger on a real database (SQLite; PostgreSQL too when configured)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from certwarden.ca import Authority, DuplicateSerial, NotFound, RevocationReason
from certwarden.ca.hierarchy import init_ca
from certwarden.ca.model import AuditAction, AuditEvent
from certwarden.store.ca_ledger import SqlLedger

PASS = b"integration"


def _authority(url: str, key_dir: Path) -> tuple[SqlLedger, Authority]:
    ledger = SqlLedger.open(url)
    init_ca(ledger, name=f"Ledger CA {key_dir.name}", key_dir=key_dir, passphrase=PASS)
    return ledger, Authority.open(ledger, passphrase=lambda: PASS)


def test_issue_revoke_crl_roundtrip_on_each_database(db_urls: list[str], tmp_path: Path) -> None:
    for i, url in enumerate(db_urls):
        ledger, authority = _authority(url, tmp_path / f"k{i}")
        key = ec.generate_private_key(ec.SECP256R1())
        chain = authority.issue(public_key=key.public_key(), names=["db.internal"],
                                requested_by="it")
        # a fresh ledger (new engine, new connections) sees the committed issuance
        again = SqlLedger.open(url)
        assert again.issued(chain.serial) == chain.record
        before = again.revision()
        rev = authority.revoke(chain.serial, RevocationReason.KEY_COMPROMISE,
                               requested_by="it")
        assert again.revocation(chain.serial) == rev
        assert again.revision() > before  # responders poll it to see a revocation
        n1 = authority.crl().number
        assert authority.crl().number == n1 + 1
        assert again.latest_crl(authority.issuer.name).number == n1 + 1  # type: ignore[union-attr]
        listed = list(again.list_issued(issuer=authority.issuer.name))
        assert listed == [(chain.record, rev)]
        actions = [e.action for e in again.audit_events(limit=5)]
        assert actions[:3] == [AuditAction.CRL, AuditAction.CRL, AuditAction.REVOKE]
        ledger.close()
        again.close()


def test_the_database_refuses_a_duplicate_serial(db_urls: list[str], tmp_path: Path) -> None:
    for i, url in enumerate(db_urls):
        ledger, authority = _authority(url, tmp_path / f"d{i}")
        key = ec.generate_private_key(ec.SECP256R1())
        rec = authority.issue(public_key=key.public_key(), names=["x.internal"]).record
        clone = dataclasses.replace(rec, sha256="0" * 64)
        with pytest.raises(DuplicateSerial, match="duplicate"):
            ledger.record_issued([clone], events=[])
        # the failed transaction left nothing behind (the audit event was in it too)
        event = AuditEvent(at=dt.datetime.now(dt.UTC), actor="t", action=AuditAction.ISSUE,
                           serial="ff" * 16)
        other = dataclasses.replace(rec, serial="ff" * 16, sha256="1" * 64)
        with pytest.raises(DuplicateSerial):
            ledger.record_issued([other, clone], events=[event])
        assert ledger.issued("ff" * 16) is None
        assert all(e.serial != "ff" * 16 for e in ledger.audit_events(limit=50))
        with pytest.raises(NotFound):
            authority.revoke("ab" * 16)
        ledger.close()


def test_settings_and_issuers_persist(db_urls: list[str], tmp_path: Path) -> None:
    for i, url in enumerate(db_urls):
        ledger, authority = _authority(url, tmp_path / f"s{i}")
        ledger.put_setting("t.key", {"a": 1})
        ledger.put_setting("t.key", {"a": 2})
        other = SqlLedger.open(url)
        assert other.get_setting("t.key") == {"a": 2}
        names = [x.name for x in other.issuers()]
        assert authority.issuer.name in names
        assert authority.issuer.parent in names
        other.close()
        ledger.close()
