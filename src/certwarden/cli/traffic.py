"""``certwarden traffic PCAP...``: passive discovery from packet captures, with alerts."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any

import click

from certwarden.cli import Findings, fail
from certwarden.records import Severity, Sighting
from certwarden.store.inventory import Inventory
from certwarden.store.recorder import Recorder
from certwarden.traffic.alerts import Blocklist
from certwarden.traffic.observe import (
    CaptureDone,
    NewCertificate,
    Observed,
    capture_row,
    certificate_row,
    observe,
    session_row,
    sighting_of,
)

_SEVERITY_ORDER = [str(s) for s in (Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH)]


@click.command("traffic")
@click.argument("pcaps", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json-out", "json_out", default=None, metavar="FILE",
              help="Write JSON lines (sessions, certificates, alerts, captures) to FILE "
                   "instead of standard output.")
@click.option("--alerts", "with_alerts", is_flag=True,
              help="Apply the detection rules (self-signed, unknown self-signed, SSLBL, C2).")
@click.option("--blocklist", "blocklists", multiple=True, metavar="SSLBL.csv",
              type=click.Path(dir_okay=False),
              help="abuse.ch SSLBL certificate or JA3 CSV (repeatable); implies --alerts.")
@click.option("--no-ja4plus", "no_ja4plus", is_flag=True,
              help="Do not compute JA4S/JA4X (FoxIO License 1.1); JA3/JA3S/JA4 stay.")
@click.option("--no-inventory", "no_inventory", is_flag=True,
              help="Neither consult nor update the inventory.")
@click.option("--fail-on", "fail_on", type=click.Choice(_SEVERITY_ORDER), default=None,
              help="Exit 1 when an alert at or above this severity fired.")
@click.pass_context
def traffic_cmd(ctx: click.Context, pcaps: tuple[str, ...], json_out: str | None,
                with_alerts: bool, blocklists: tuple[str, ...], no_ja4plus: bool,
                no_inventory: bool, fail_on: str | None) -> None:
    """Find TLS sessions and certificates in packet captures (pcap, pcapng, gzip)."""
    for p in pcaps:
        if not os.path.isfile(p):
            fail(f"{p}: no such capture file")
    blocklist = Blocklist.load(list(blocklists)) if blocklists else None
    with_alerts = with_alerts or bool(blocklists)
    counts = {"sessions": 0, "certificates": 0, "alerts": 0}
    worst = -1
    failed: list[str] = []
    with contextlib.ExitStack() as stack:
        inventory = (None if no_inventory else
                     stack.enter_context(Inventory.open((ctx.obj or {}).get("db_url"))))
        known: Callable[[str], bool] | None = (inventory.has_certificate
                                               if inventory is not None else None)
        out: IO[str] = sys.stdout
        if json_out:
            try:
                out = open(json_out, "w", encoding="utf-8")  # noqa: SIM115 - closed below
            except OSError as exc:
                fail(f"{json_out}: {exc.strerror or 'cannot write'}")
            stack.callback(out.close)
        rec: Recorder | None = (None if inventory is None else
                                stack.enter_context(inventory.record("traffic", list(pcaps))))
        held: list[Sighting] = []  # this capture's sightings
        for event in observe(pcaps, ja4plus=not no_ja4plus, blocklist=blocklist, known=known,
                             with_alerts=with_alerts):
            if isinstance(event, Observed):
                counts["sessions"] += 1
                _line(out, session_row(event))
                for alert in event.alerts:
                    counts["alerts"] += 1
                    worst = max(worst, _SEVERITY_ORDER.index(str(alert.severity)))
                    _line(out, alert.as_dict())
                if rec is not None:
                    s = sighting_of(event, event.session.capture, ja4plus=not no_ja4plus)
                    if s is not None:
                        held.append(s)
            elif isinstance(event, NewCertificate):
                counts["certificates"] += 1
                _line(out, certificate_row(event))
            elif isinstance(event, CaptureDone):
                st = event.stats
                _line(out, capture_row(st))
                if st.error:
                    kind = "unreadable" if st.frames == 0 else f"stopped after {st.frames} frames"
                    if st.frames == 0 and len(pcaps) == 1:
                        # The only capture: its reason becomes the one error line below.
                        failed.append(f"{st.path}: {kind}: {st.error}")
                    else:
                        click.echo(f"certwarden: warning: {st.path}: {kind}: {st.error}",
                                   err=True)
                        if st.frames == 0:
                            failed.append(st.path)
                if rec is not None:
                    rec.add_all(held)
                    rec.add(event.outcome)
                    # Committed at the capture's end, not before: a certificate becomes
                    # "known" to the alerts of the next capture, never mid-way through its own.
                    rec.flush()
                    held = []
    if json_out:
        click.echo(f"{counts['sessions']} sessions, {counts['certificates']} certificates, "
                   f"{counts['alerts']} alerts -> {json_out}", err=True)
    if failed:
        fail(failed[0] if len(pcaps) == 1 else
             f"{len(failed)} of {len(pcaps)} captures could not be read")
    if fail_on is not None and worst >= _SEVERITY_ORDER.index(fail_on):
        raise Findings()


def _line(out: IO[str], row: dict[str, Any]) -> None:
    out.write(json.dumps(row, default=str) + "\n")


COMMANDS = (traffic_cmd,)
