"""The inventory against real databases: SQLite always, PostgreSQL via tests/with-postgres.sh."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from certwarden.errors import UsageError
from certwarden.records import KeyFile, Location, Sighting
from certwarden.store.inventory import Inventory
from discovery_support import issue, sighting


@pytest.fixture(params=["sqlite", "postgresql"])
def inv(request: pytest.FixtureRequest, db_urls: list[str]) -> Iterator[Inventory]:
    wanted = [u for u in db_urls if u.startswith(request.param)]
    if not wanted:
        pytest.skip("no PostgreSQL here: run through tests/with-postgres.sh")
    url = wanted[0]
    if url.startswith("postgresql"):
        _reset_postgres(url)
    inventory = Inventory.open(url, batch_size=3)
    yield inventory
    inventory.close()


def _reset_postgres(url: str) -> None:
    # Each test starts from an empty schema: drop what an earlier test migrated.
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def test_rerun_adds_no_duplicates_and_moves_last_seen(inv: Inventory) -> None:
    ca = issue("Test CA", ca=True)
    leaves = [issue(f"host{i}.test", issuer=ca) for i in range(5)]
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    s1 = inv.start_scan("net", ["127.0.0.1"])
    assert inv.add_sightings(s1, (sighting(c, port=1000 + i, chain=(ca,), at=t0)
                                  for i, c in enumerate(leaves))) == 5
    inv.finish_scan(s1)
    t1 = t0 + dt.timedelta(hours=1)
    s2 = inv.start_scan("net", ["127.0.0.1"])
    inv.add_sightings(s2, (sighting(c, port=1000 + i, chain=(ca,), at=t1)
                           for i, c in enumerate(leaves)))
    inv.finish_scan(s2)

    certs = list(inv.certificates())
    assert sorted(c.sha256 for c in certs) == sorted([ca.record.sha256] +
                                                     [c.record.sha256 for c in leaves])
    current = list(inv.sightings())
    assert len(current) == 5
    assert {sg.seen_at for sg in current} == {t1}
    assert all(sg.chain == (ca.record,) for sg in current)
    assert len(list(inv.sightings(latest_only=False))) == 5
    assert inv.has_certificate(ca.record.sha256)
    assert not inv.has_certificate("00" * 32)
    assert [c.change for c in inv.changes(s1)] == ["new"] * 5
    assert inv.changes(s2) == []
    summary = inv.scan(s2)
    assert (summary.sightings, summary.errors) == (5, 0)
    assert summary.finished_at is not None


def test_changed_certificate_and_gone_location_are_recorded(inv: Inventory) -> None:
    a, b, c = issue("a.test"), issue("b.test"), issue("c.test")
    s1 = inv.start_scan("net", ["127.0.0.1"])
    inv.add_sightings(s1, [sighting(a, port=1), sighting(b, port=2)])
    inv.finish_scan(s1)
    # Port 1 now serves another certificate; port 2 stopped answering.
    s2 = inv.start_scan("net", ["127.0.0.1"])
    inv.add_sightings(s2, [sighting(c, port=1)])
    inv.record_outcome(s2, "tls://127.0.0.1:2", "refused", "connection refused")
    inv.finish_scan(s2)

    changes = {(ch.location, ch.change): ch for ch in inv.changes(s2)}
    assert set(changes) == {("tls://127.0.0.1:1", "changed"), ("tls://127.0.0.1:2", "gone")}
    changed = changes[("tls://127.0.0.1:1", "changed")]
    assert (changed.old_sha256, changed.new_sha256) == (a.record.sha256, c.record.sha256)
    assert changes[("tls://127.0.0.1:2", "gone")].old_sha256 == b.record.sha256
    assert [sg.certificate.sha256 for sg in inv.sightings()] == [c.record.sha256]
    assert inv.scan(s2).errors == 1
    assert [(o.target, o.status) for o in inv.outcomes(s2)] == [("tls://127.0.0.1:2", "refused")]

    diff = inv.diff(s1, s2)
    assert diff.new == ()
    assert diff.gone == (("tls://127.0.0.1:2", b.record.sha256),)
    assert diff.changed == (("tls://127.0.0.1:1", a.record.sha256, c.record.sha256),)
    assert diff.unchanged == 0
    back = inv.diff(s2, s1)
    assert back.new == (("tls://127.0.0.1:2", b.record.sha256),)

    # It answers again: "back", and listed as current again.
    s3 = inv.start_scan("net", ["127.0.0.1"])
    inv.add_sightings(s3, [sighting(c, port=1), sighting(b, port=2)])
    inv.finish_scan(s3)
    assert [ch.change for ch in inv.changes(s3)] == ["back"]
    assert len(list(inv.sightings())) == 2


def test_file_context_and_key_round_trip(inv: Inventory, tmp_path: Path) -> None:
    cert = issue("files.test")
    path = str(tmp_path / "x.pem")
    sg = Sighting(certificate=cert.record, location=Location.file(path),
                  seen_at=dt.datetime.now(dt.UTC), file_mode=0o644, file_owner="root",
                  key=KeyFile(path=path + ".key", encrypted=False, mode=0o644, owner="root"),
                  extra={"format": "pem"})
    scan = inv.start_scan("files", [str(tmp_path)])
    inv.add_sightings(scan, [sg])
    inv.finish_scan(scan)
    [back] = inv.sightings()
    assert back.location == sg.location
    assert back.key == sg.key
    assert (back.file_mode, back.file_owner, back.extra) == (0o644, "root", {"format": "pem"})
    inv.set_owner(sg.location.uri, "team-web", "web@example.test")
    inv.add_tag(sg.location.uri, "prod")
    inv.add_tag(sg.location.uri, "prod")
    with pytest.raises(UsageError):
        inv.add_tag("file:///nowhere", "x")


def test_unknown_scan_is_a_usage_error(inv: Inventory) -> None:
    with pytest.raises(UsageError, match="no scan 999"):
        inv.add_sightings(999, [])
    with pytest.raises(UsageError, match="no scan 42"):
        inv.diff(42, 43)


def test_same_sighting_twice_in_one_scan_is_one_observation(inv: Inventory) -> None:
    cert = issue("dup.test")
    scan = inv.start_scan("net", ["x"])
    inv.add_sightings(scan, [sighting(cert, port=5)] * 7)
    inv.finish_scan(scan)
    assert inv.scan(scan).sightings == 1
