"""``certwarden scan``: discover TLS endpoints over the network into the inventory."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import sys
import time
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from certwarden.assess import Finding, findings_by_location
from certwarden.cli import FiniteFloatRange, emit_json, fail
from certwarden.discovery.net import REACHED, ProbeResult, Scanner, ScanOptions, Status
from certwarden.discovery.net import StarttlsMode as Mode
from certwarden.discovery.targets import (
    DEFAULT_PORTS,
    Starttls,
    count_endpoints,
    endpoints,
    is_ip,
    parse_ports,
    read_targets,
)
from certwarden.errors import ParseError
from certwarden.records import Sighting
from certwarden.store.inventory import Inventory
from certwarden.x509 import Certificate

# Commit at least this often, so a killed scan loses under a second of findings.
FLUSH_SECONDS = 0.5
FLUSH_ITEMS = 100

STARTTLS_CHOICES = [m.value for m in Mode] + [p.value for p in Starttls]


def _rate(text: str | None) -> float | None:
    if text is None:
        return None
    value = text.removesuffix("/s")
    try:
        rate = float(value)
    except ValueError:
        fail(f"--rate {text!r}: want a number of connections per second, e.g. 100/s")
    if not rate > 0:
        fail("--rate must be above 0")
    return rate


class _Sink:
    """Streams results into the inventory in batches, from a worker thread."""

    def __init__(self, inv: Inventory, scan_id: int, keep_json: bool) -> None:
        self.inv, self.scan_id, self.keep_json = inv, scan_id, keep_json
        self.pending: list[ProbeResult] = []
        self.last = time.monotonic()
        self.json: list[dict[str, Any]] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self.certs = 0
        self.parsed: dict[bytes, Certificate] = {}  # intermediates repeat across servers
        self.seen: list[Sighting] = []  # this scan's leaves, judged when it ends
        self.unnamed = 0  # endpoints reached by bare IP without SNI: no name was checked
        self.json_uri: list[str] = []  # location of each JSON object, for its findings
        self._lock = asyncio.Lock()

    async def add(self, result: ProbeResult) -> None:
        self.pending.append(result)
        if len(self.pending) >= FLUSH_ITEMS or time.monotonic() - self.last > FLUSH_SECONDS:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:  # one writer thread at a time
            batch, self.pending = self.pending, []
            self.last = time.monotonic()
            if batch:
                await asyncio.to_thread(self._write, batch)

    async def tick(self, stop: asyncio.Event) -> None:
        """Flush on a clock too: slow endpoints must not hold back what fast ones found."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
            await self.flush()

    def _write(self, batch: list[ProbeResult]) -> None:
        now = dt.datetime.now(dt.UTC)
        sightings: list[Sighting] = []
        for r in batch:
            certs: tuple[Certificate, ...] = ()
            status, reason = r.status, r.reason
            if status is Status.OK:
                try:
                    certs = r.certificates(self.parsed)
                except ParseError as exc:
                    status, reason = Status.BAD_CERTIFICATE, exc.reason
            if certs:
                sg = r.sighting(now, certs)
                if sg is not None:
                    sightings.append(sg)
                    self.certs += 1
                    self.seen.append(sg)
                    if sg.location.sni is None and is_ip(r.endpoint.host):
                        self.unnamed += 1
            self.counts[str(status)] += 1
            if status is not Status.OK:  # a success is on record as its sighting
                self.inv.record_outcome(self.scan_id, r.location.uri, str(status), reason)
            if self.keep_json and status in REACHED:
                self.json.append(_json(r, certs, status, reason))
                self.json_uri.append(r.location.uri)
        self.inv.add_sightings(self.scan_id, sightings)
        self.inv.flush()


def _json(r: ProbeResult, certs: tuple[Certificate, ...], status: Status,
          reason: str | None) -> dict[str, Any]:
    ep = r.endpoint
    return {"host": ep.host, "port": ep.port, "sni": ep.sni,
            "starttls": str(r.starttls) if r.starttls else None,
            "tls_version": r.tls_version, "cipher": r.cipher, "alpn": r.alpn,
            "chain": [c.as_dict() for c in certs],
            "status": str(status),
            "error": None if status is Status.OK else f"{status}: {reason}" if reason
            else str(status)}


async def _run(scanner: Scanner, eps: Any, sink: _Sink, progress: Progress | None,
               total: int) -> None:
    task = progress.add_task("scanning", total=total) if progress else None
    stop = asyncio.Event()
    ticker = asyncio.create_task(sink.tick(stop))
    try:
        async for result in scanner.scan(eps):
            await sink.add(result)
            if progress is not None and task is not None:
                progress.advance(task)
    finally:
        stop.set()
        await ticker
        # Whatever ends the scan (done, Ctrl-C), what was found is written.
        await sink.flush()


@click.command("scan")
@click.argument("targets", nargs=-1, required=True)
@click.option("--ports", "ports_text", default=None, metavar="LIST",
              help="Ports: 443,8443,1000-1010 (default: common TLS and STARTTLS ports).")
@click.option("--sni", "snis", multiple=True, metavar="NAME",
              help="Server name to send on targets without their own NAME@ (repeat to try "
                   "several per endpoint).")
@click.option("--starttls", "starttls", default="auto", show_default=True,
              type=click.Choice(STARTTLS_CHOICES, case_sensitive=False),
              help="auto: by port and by banner; none: implicit TLS only; or one protocol.")
@click.option("--concurrency", default=200, show_default=True, type=click.IntRange(1, 10000),
              help="Connections open at once.")
@click.option("--rate", "rate_text", default=None, metavar="N/s",
              help="At most N new connections per second.")
@click.option("--timeout", default=3.0, show_default=True, type=FiniteFloatRange(0.05, 600),
              help="Seconds to connect, and again for the STARTTLS dialogue + handshake.")
@click.option("--retries", default=0, show_default=True, type=click.IntRange(0, 10),
              help="Retries after a timeout or reset.")
@click.option("--json-out", "json_out", default=None, metavar="FILE",
              help="Write one JSON object per endpoint reached (- for stdout).")
@click.pass_context
def scan_cmd(ctx: click.Context, targets: tuple[str, ...], ports_text: str | None,
             snis: tuple[str, ...], starttls: str, concurrency: int, rate_text: str | None,
             timeout: float, retries: int, json_out: str | None) -> None:
    """Discover TLS endpoints. TARGET: host, IP, CIDR, a.b.c.d-e, host:port, @file;
    NAME@TARGET sends (and checks) NAME as the SNI on that target's ports only."""
    specs = read_targets(targets)
    ports = parse_ports(ports_text) if ports_text is not None else DEFAULT_PORTS
    mode: Mode | Starttls = (Mode(starttls.lower()) if starttls.lower() in Mode.__members__
                             .values() else Starttls(starttls.lower()))
    options = ScanOptions(concurrency=concurrency, rate=_rate(rate_text),
                          connect_timeout=timeout, handshake_timeout=timeout,
                          retries=retries, starttls=mode)
    total = count_endpoints(specs, ports, snis)
    inv = Inventory.open(ctx.obj.get("db_url"))
    try:
        scan_id = inv.start_scan("net", list(targets))
        sink = _Sink(inv, scan_id, keep_json=json_out is not None)
        show = sys.stderr.isatty() and json_out != "-"
        progress = (Progress(TextColumn("[bold]scan"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=Console(stderr=True), transient=True)
                    if show else None)
        eps = endpoints(specs, ports, snis=snis)
        started = time.perf_counter()
        with progress or contextlib.nullcontext():
            asyncio.run(_run(Scanner(options), eps, sink, progress, total))
        inv.finish_scan(scan_id)
        elapsed = time.perf_counter() - started
    finally:
        inv.close()
    findings = findings_by_location(sink.seen)
    if json_out is not None:
        for obj, uri in zip(sink.json, sink.json_uri, strict=True):
            obj["findings"] = [{"rule": f.rule, "severity": str(f.severity), "message": f.message}
                               for f in findings.get(uri, [])]
        emit_json(sink.json, json_out)
    if json_out != "-":
        _print_findings(findings)
        errors = {k: v for k, v in sorted(sink.counts.items()) if k != Status.OK}
        detail = ", ".join(f"{v} {k}" for k, v in errors.items())
        if sink.unnamed:
            click.echo(f"note: {sink.unnamed} endpoint(s) reached by IP address without SNI: "
                       "names were not checked (scan NAME@ADDRESS or give --sni NAME)")
        click.echo(f"scan {scan_id}: {total} endpoint(s) in {elapsed:.1f}s, "
                   f"{sink.certs} certificate chain(s) stored"
                   + (f"; {detail}" if detail else ""))


def _print_findings(findings: dict[str, list[Finding]]) -> None:
    """What this scan saw, judged on the spot (``certwarden report`` judges the inventory)."""
    every = sorted((f for found in findings.values() for f in found),
                   key=lambda f: (-f.severity.rank, f.rule, f.location or ""))
    if not every:
        return
    table = Table(title=f"findings for what this scan saw ({len(every)})", title_justify="left")
    for col in ("severity", "rule", "location", "message"):
        table.add_column(col, overflow="fold")
    for f in every:
        table.add_row(str(f.severity).upper(), f.rule, f.location or "", f.message)
    Console(width=None if sys.stdout.isatty() else 160).print(table)


COMMANDS = (scan_cmd,)
