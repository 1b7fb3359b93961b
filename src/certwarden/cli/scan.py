"""``certwarden scan``: discover TLS endpoints over the network into the inventory."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from certwarden.assess import Finding, findings_by_location
from certwarden.cli import FiniteFloatRange, emit_json, fail
from certwarden.discovery.net import REACHED, ProbeResult, Scanner, ScanOptions
from certwarden.discovery.net import StarttlsMode as Mode
from certwarden.discovery.targets import (
    DEFAULT_PORTS,
    Starttls,
    count_endpoints,
    endpoints,
    parse_ports,
    read_targets,
)
from certwarden.records import Outcome, OutcomeStatus, Sighting
from certwarden.store.inventory import Inventory
from certwarden.x509 import Certificate

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


class _Shown:
    """What this command prints of the scan: JSON objects, and the leaves to judge."""

    def __init__(self, keep_json: bool) -> None:
        self.keep_json = keep_json
        self.json: list[dict[str, Any]] = []
        self.json_uri: list[str] = []  # location of each JSON object, for its findings
        self.seen: list[Sighting] = []  # this scan's leaves, judged when it ends

    def __call__(self, r: ProbeResult, item: Sighting | Outcome) -> None:
        if isinstance(item, Sighting):
            self.seen.append(item)
            certs, status, reason = (item.certificate, *item.chain), OutcomeStatus.OK, None
        else:
            certs, status, reason = (), item.status, item.reason
        if self.keep_json and status in REACHED:
            self.json.append(_json(r, certs, status, reason))
            self.json_uri.append(r.location.uri)


def _json(r: ProbeResult, certs: tuple[Certificate, ...], status: OutcomeStatus,
          reason: str | None) -> dict[str, Any]:
    ep = r.endpoint
    return {"host": ep.host, "port": ep.port, "sni": ep.sni,
            "starttls": str(r.starttls) if r.starttls else None,
            "tls_version": r.tls_version, "cipher": r.cipher, "alpn": r.alpn,
            "chain": [c.as_dict() for c in certs],
            "status": str(status),
            "error": None if status is OutcomeStatus.OK else f"{status}: {reason}" if reason
            else str(status)}


async def _counted(results: AsyncIterator[ProbeResult], progress: Progress | None,
                   total: int) -> AsyncIterator[ProbeResult]:
    task = progress.add_task("scanning", total=total) if progress else None
    async for result in results:
        yield result
        if progress is not None and task is not None:
            progress.advance(task)


@click.command("scan")
@click.argument("targets", nargs=-1, required=True)
@click.option("--ports", "ports_text", default=None, metavar="LIST",
              help="Ports: 443,8443,1000-1010 (default: common TLS and STARTTLS ports).")
@click.option("--sni", "snis", multiple=True, metavar="NAME",
              help="Server name to send (repeat to try several per endpoint).")
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
    """Discover TLS endpoints. TARGET: host, IP, CIDR, a.b.c.d-e, host:port, @file."""
    specs = read_targets(targets)
    ports = parse_ports(ports_text) if ports_text is not None else DEFAULT_PORTS
    mode: Mode | Starttls = (Mode(starttls.lower()) if starttls.lower() in Mode.__members__
                             .values() else Starttls(starttls.lower()))
    options = ScanOptions(concurrency=concurrency, rate=_rate(rate_text),
                          connect_timeout=timeout, handshake_timeout=timeout,
                          retries=retries, starttls=mode)
    total = count_endpoints(specs, ports, snis)
    shown = _Shown(keep_json=json_out is not None)
    show = sys.stderr.isatty() and json_out != "-"
    progress = (Progress(TextColumn("[bold]scan"), BarColumn(), MofNCompleteColumn(),
                         TimeElapsedColumn(), console=Console(stderr=True), transient=True)
                if show else None)
    eps = endpoints(specs, ports, snis=snis)
    with Inventory.open(ctx.obj.get("db_url")) as inv, inv.record("net", list(targets)) as rec:
        started = time.perf_counter()
        with progress or contextlib.nullcontext():
            asyncio.run(rec.stream(_counted(Scanner(options).scan(eps), progress, total),
                                   seen=shown))
    elapsed = time.perf_counter() - started
    findings = findings_by_location(shown.seen)
    if json_out is not None:
        for obj, uri in zip(shown.json, shown.json_uri, strict=True):
            obj["findings"] = [{"rule": f.rule, "severity": str(f.severity), "message": f.message}
                               for f in findings.get(uri, [])]
        emit_json(shown.json, json_out)
    if json_out != "-":
        _print_findings(findings)
        detail = ", ".join(f"{v} {k}" for k, v in sorted(rec.outcomes.items())
                           if k is not OutcomeStatus.OK)
        click.echo(f"scan {rec.scan_id}: {total} endpoint(s) in {elapsed:.1f}s, "
                   f"{rec.sightings} certificate chain(s) stored"
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
