"""The inventory write: one scan, from the first thing a source finds to the scan's end.

Every source writes through here, nowhere else::

    with inventory.record("files", paths) as rec:
        for item in sweep(paths):      # Sighting | Outcome, from any source
            rec.add(item)

    with inventory.record("net", targets) as rec:       # an asynchronous source
        asyncio.run(rec.stream(Scanner(options).scan(endpoints)))

What the recorder owns, so that no command, worker or lifecycle step writes it again:

- the scan's life: ``Inventory.record`` starts it; leaving the block normally finishes it
  (stamps the end, marks the locations that went away); leaving it with an error writes what
  is buffered and leaves the scan open (``finished_at`` stays empty), so nothing found is
  lost and nothing is called gone by a scan that never ended;
- batching: sightings and outcomes are committed together every ``batch_size`` items, so a
  scan killed outright (SIGKILL) keeps everything before its last commit;
- for ``stream``: the flush clock (slow endpoints must not hold back what fast ones found),
  the hop to a worker thread (parsing DER and SQL stay off the event loop), and the parse
  cache (intermediates repeat across servers).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from typing import Protocol, Self, TypeVar

from certwarden.errors import CertwardenError
from certwarden.records import Outcome, OutcomeStatus, Sighting
from certwarden.x509 import Certificate

# stream(): commit at least this often, so a killed scan loses under a second of findings.
FLUSH_SECONDS = 0.5
FLUSH_ITEMS = 100


class Unparsed(Protocol):
    """A source's raw result that becomes a record in the writer thread (net's ProbeResult)."""

    def record(self, cache: dict[bytes, Certificate]) -> Sighting | Outcome: ...


class ScanStore(Protocol):
    """What the recorder needs of the inventory: one committed batch, and the scan's end."""

    def write_batch(self, scan_id: int, sightings: Sequence[Sighting],
                    outcomes: Sequence[tuple[Outcome, dt.datetime]]) -> None: ...

    def finish_scan(self, scan_id: int) -> None: ...


R = TypeVar("R", bound=Unparsed)


class Recorder:
    """One scan being written. Made by ``Inventory.record``; used from one thread at a time."""

    def __init__(self, store: ScanStore, scan_id: int, *, batch_size: int) -> None:
        self.scan_id = scan_id
        self.sightings = 0  # sightings handed in
        self.outcomes: collections.Counter[OutcomeStatus] = collections.Counter()
        self.parsed: dict[bytes, Certificate] = {}  # stream(): DER -> record, this scan
        self._store = store
        self._batch = max(1, batch_size)
        self._pending_sightings: list[Sighting] = []
        self._pending_outcomes: list[tuple[Outcome, dt.datetime]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc_type is None:
            self.finish()
            return
        # Keep what was found; the error that ended the scan is the one to report, so a
        # batch the database refuses now is dropped rather than raised over it.
        try:
            self.flush()
        except CertwardenError:
            self._pending_sightings, self._pending_outcomes = [], []

    def add(self, item: Sighting | Outcome) -> None:
        """Buffer one sighting or outcome; commit when ``batch_size`` are waiting."""
        if isinstance(item, Sighting):
            self._pending_sightings.append(item)
            self.sightings += 1
        else:
            self._pending_outcomes.append((item, dt.datetime.now(dt.UTC)))
            self.outcomes[item.status] += 1
        if len(self._pending_sightings) + len(self._pending_outcomes) >= self._batch:
            self.flush()

    def add_all(self, items: Iterable[Sighting | Outcome]) -> None:
        for item in items:
            self.add(item)

    def flush(self) -> None:
        """Commit what is buffered (kept buffered if the commit fails)."""
        if not (self._pending_sightings or self._pending_outcomes):
            return
        self._store.write_batch(self.scan_id, self._pending_sightings, self._pending_outcomes)
        self._pending_sightings, self._pending_outcomes = [], []

    def finish(self) -> None:
        """Commit the rest and end the scan: stamp its end, mark what went away."""
        self.flush()
        self._store.finish_scan(self.scan_id)

    async def stream(self, source: AsyncIterable[R], *,
                     seen: Callable[[R, Sighting | Outcome], None] | None = None) -> None:
        """Record an asynchronous source; ``seen(raw, record)`` runs in the writer thread.

        Results are handed to a worker thread every ``FLUSH_ITEMS`` or ``FLUSH_SECONDS``,
        whichever comes first, and on the way out however the stream ends (done, Ctrl-C).
        """
        pending: list[R] = []
        last = time.monotonic()
        lock = asyncio.Lock()  # one writer thread at a time
        stop = asyncio.Event()

        async def flush() -> None:
            nonlocal pending, last
            async with lock:
                batch, pending = pending, []
                last = time.monotonic()
                if batch:
                    await asyncio.to_thread(self._write_raw, batch, seen)

        async def tick() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
                await flush()

        ticker = asyncio.create_task(tick())
        try:
            async for raw in source:
                pending.append(raw)
                if len(pending) >= FLUSH_ITEMS or time.monotonic() - last > FLUSH_SECONDS:
                    await flush()
        finally:
            stop.set()
            await ticker
            await flush()

    def _write_raw(self, batch: list[R],
                   seen: Callable[[R, Sighting | Outcome], None] | None) -> None:
        for raw in batch:
            item = raw.record(self.parsed)
            if seen is not None:
                seen(raw, item)
            self.add(item)
        self.flush()


__all__ = ["FLUSH_ITEMS", "FLUSH_SECONDS", "Recorder", "ScanStore", "Unparsed"]
