"""The recorder every source writes through, on real databases (SQLite; PostgreSQL too via
tests/with-postgres.sh): batches committed as they fill, the scan finished only by a normal
end, the flush clock and worker thread of ``stream``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from certwarden.discovery.net import ProbeResult
from certwarden.discovery.targets import Endpoint
from certwarden.records import Outcome, OutcomeStatus
from certwarden.store import recorder
from certwarden.store.inventory import Inventory
from discovery_support import issue, sighting


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, db_urls: list[str]) -> str:
    wanted = [u for u in db_urls if u.startswith(request.param)]
    if not wanted:
        pytest.skip("no PostgreSQL here: run through tests/with-postgres.sh")
    if request.param == "postgresql":
        from sqlalchemy import create_engine, text

        engine = create_engine(wanted[0])
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    return wanted[0]


@pytest.fixture
def inv(url: str) -> Iterator[Inventory]:
    with Inventory.open(url, batch_size=3) as inventory:
        yield inventory


def _stored(url: str) -> int:
    """Sightings another connection sees: what is committed, not what is buffered."""
    with Inventory.open(url) as other:
        return len(list(other.sightings(latest_only=False)))


def test_batches_are_committed_as_they_fill_and_the_end_finishes_the_scan(
        inv: Inventory, url: str) -> None:
    cert = issue("batch.test")
    with inv.record("net", ["127.0.0.1"]) as rec:
        for port in range(1, 8):
            rec.add(sighting(cert, port=port))
            # batch_size=3: committed at 3 and 6, the 7th waits for the end.
            assert _stored(url) == port // 3 * 3
        rec.add(Outcome(location="tls://127.0.0.1:9", status=OutcomeStatus.REFUSED,
                        reason="connection refused"))
        [open_scan] = inv.scans()
        assert open_scan.finished_at is None
    assert _stored(url) == 7
    summary = inv.scan(rec.scan_id)
    assert summary.finished_at is not None
    assert (summary.sightings, summary.errors) == (7, 1)
    assert [(o.target, o.status, o.reason) for o in inv.outcomes(rec.scan_id)] == [
        ("tls://127.0.0.1:9", "refused", "connection refused")]
    assert (rec.sightings, dict(rec.outcomes)) == (7, {OutcomeStatus.REFUSED: 1})


def test_an_error_keeps_what_was_found_and_leaves_the_scan_open(inv: Inventory) -> None:
    a, b = issue("a.rec.test"), issue("b.rec.test")
    with inv.record("net", ["127.0.0.1"]) as first:
        first.add_all([sighting(a, port=1), sighting(b, port=2)])

    class ScanInterruptedError(Exception):
        pass

    def interrupted_scan() -> int:
        with inv.record("net", ["127.0.0.1"]) as second:
            second.add(sighting(a, port=1))  # buffered: batch_size is 3
            raise ScanInterruptedError
        return second.scan_id  # pragma: no cover - never reached

    with pytest.raises(ScanInterruptedError):
        interrupted_scan()
    [second] = [s for s in inv.scans() if s.id != first.scan_id]
    # The sighting buffered before the error was written; the scan did not end, so port 2
    # (not looked at again) is not called gone.
    assert (second.finished_at, second.sightings) == (None, 1)
    assert inv.changes(second.id) == []
    assert {s.location.uri for s in inv.sightings()} == {"tls://127.0.0.1:1",
                                                          "tls://127.0.0.1:2"}


def test_stream_parses_in_a_worker_thread_with_one_cache_and_flushes_on_a_clock(
        inv: Inventory, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "FLUSH_SECONDS", 0.05)
    ca = issue("Stream CA", ca=True)
    leaves = [issue(f"s{i}.rec.test", issuer=ca) for i in range(2)]
    results = [
        ProbeResult(endpoint=Endpoint(host="127.0.0.1", port=1), status=OutcomeStatus.OK,
                    chain=(leaves[0].der, ca.der), tls_version="TLSv1.3"),
        ProbeResult(endpoint=Endpoint(host="127.0.0.1", port=2), status=OutcomeStatus.OK,
                    chain=(leaves[1].der, ca.der), tls_version="TLSv1.3"),
        ProbeResult(endpoint=Endpoint(host="127.0.0.1", port=3), status=OutcomeStatus.OK,
                    chain=(b"\x30\x03\x02\x01\x00",)),  # a "leaf" that is not a certificate
        ProbeResult(endpoint=Endpoint(host="127.0.0.1", port=4),
                    status=OutcomeStatus.REFUSED, reason="connection refused"),
    ]
    committed_while_waiting: list[int] = []
    threads: set[int] = set()
    loop_thread = threading.get_ident()

    async def slow_source() -> AsyncIterator[ProbeResult]:
        yield results[0]
        # A slow endpoint: what the fast one found is committed on the clock meanwhile.
        await asyncio.sleep(0.5)
        committed_while_waiting.append(await asyncio.to_thread(_stored, url))
        for r in results[1:]:
            yield r

    seen: list[tuple[int, str]] = []

    def note(raw: ProbeResult, item: object) -> None:
        threads.add(threading.get_ident())
        seen.append((raw.endpoint.port, type(item).__name__))

    with inv.record("net", ["127.0.0.1"]) as rec:
        asyncio.run(rec.stream(slow_source(), seen=note))
    assert committed_while_waiting == [1]
    assert seen == [(1, "Sighting"), (2, "Sighting"), (3, "Outcome"), (4, "Outcome")]
    assert threads
    assert loop_thread not in threads
    # One cache for the scan: the shared intermediate was parsed once, leaves not kept.
    assert list(rec.parsed) == [ca.der]
    statuses = {o.target: o.status for o in inv.outcomes(rec.scan_id)}
    assert statuses == {"tls://127.0.0.1:3": "bad-certificate",
                        "tls://127.0.0.1:4": "refused"}
    assert [len(s.chain) for s in inv.sightings()] == [1, 1]


def test_a_status_outside_the_vocabulary_is_refused(inv: Inventory) -> None:
    scan_id = inv.start_scan("net", ["x"])
    with pytest.raises(ValueError, match="'exploded' is not a valid OutcomeStatus"):
        inv.record_outcome(scan_id, "tls://127.0.0.1:1", "exploded", None)
