"""Issue 11 item 9: a location is gone only when a later scan covered that exact endpoint.

Through the real inventory (SQLite, and PostgreSQL under tests/with-postgres.sh).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from certwarden.records import Location, Sighting
from certwarden.store.coverage import parse_tls_uri
from certwarden.store.inventory import Inventory
from discovery_support import Issued, issue


@pytest.fixture(params=["sqlite", "postgresql"])
def inv(request: pytest.FixtureRequest, db_urls: list[str]) -> Iterator[Inventory]:
    from tests.integration.test_store_inventory import _reset_postgres

    wanted = [u for u in db_urls if u.startswith(request.param)]
    if not wanted:
        pytest.skip("no PostgreSQL here: run through tests/with-postgres.sh")
    if wanted[0].startswith("postgresql"):
        _reset_postgres(wanted[0])
    inventory = Inventory.open(wanted[0], batch_size=3)
    yield inventory
    inventory.close()


def _at(cert: Issued, port: int, *, sni: str | None = None,
        starttls: str | None = None) -> Sighting:
    return Sighting(certificate=cert.record, seen_at=dt.datetime.now(dt.UTC),
                    location=Location.tls("127.0.0.1", port, sni=sni, starttls=starttls))


def _present(inv: Inventory) -> set[str]:
    return {s.location.uri for s in inv.sightings() if s.position == 0}


def test_a_scan_of_other_ports_proves_nothing_gone(inv: Inventory) -> None:
    web, mail, named, other = (issue(n) for n in ("web.test", "mail.test", "app.test", "o.test"))
    s1 = inv.start_scan("net", ["127.0.0.1"])
    inv.add_sightings(s1, [_at(web, 8443), _at(mail, 2525, starttls="smtp"),
                           _at(named, 8443, sni="app.test")])
    inv.finish_scan(s1)
    before = _present(inv)
    assert len(before) == 3

    # Same target list, other ports (the bug: compared by targets only, all marked gone).
    s2 = inv.start_scan("net", ["127.0.0.1"])
    inv.add_sightings(s2, [_at(other, 9443)])
    inv.record_outcome(s2, "tls://127.0.0.1:9444", "refused", "connection refused")
    inv.finish_scan(s2)
    assert [c.change for c in inv.changes(s2)] == ["new"]
    assert _present(inv) == before | {"tls://127.0.0.1:9443"}

    # The same port under another protocol, or without the SNI: not that endpoint either.
    s3 = inv.start_scan("net", ["127.0.0.1"])
    inv.record_outcome(s3, "tls://127.0.0.1:2525", "not-tls", "the server spoke first")
    inv.record_outcome(s3, "tls://127.0.0.1:8443?sni=other.test", "handshake-failed", "alert")
    inv.finish_scan(s3)
    assert inv.changes(s3) == []

    # That exact endpoint, found serving nothing TLS: gone. A closed port: gone whatever
    # protocol was there.
    s4 = inv.start_scan("net", ["127.0.0.1:8443", "127.0.0.1:2525"])
    inv.record_outcome(s4, "tls://127.0.0.1:8443?sni=app.test", "handshake-failed", "alert")
    inv.record_outcome(s4, "tls://127.0.0.1:2525", "refused", "connection refused")
    inv.add_sightings(s4, [_at(web, 8443)])
    inv.finish_scan(s4)
    gone = {c.location for c in inv.changes(s4) if c.change == "gone"}
    assert gone == {"tls://127.0.0.1:8443?sni=app.test", "tls://127.0.0.1:2525?starttls=smtp"}
    assert _present(inv) == {"tls://127.0.0.1:8443", "tls://127.0.0.1:9443"}


def test_tls_uris_parse_back_to_their_endpoint() -> None:
    for loc in (Location.tls("127.0.0.1", 25, starttls="smtp"),
                Location.tls("::1", 443, sni="a.test"), Location.tls("host.test", 993)):
        assert parse_tls_uri(loc.uri) == ((loc.host, loc.port, loc.sni), loc.starttls)
    assert parse_tls_uri("file:///etc/x.pem") is None
    assert parse_tls_uri("tls://noport") is None
