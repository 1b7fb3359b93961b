"""``certwarden inventory``: what the inventory holds, its scans, and what changed."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any

import click

from certwarden.cli.common import emit_json, fail

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from certwarden.records import Sighting
    from certwarden.store.inventory import Inventory


def _console() -> Console:
    from rich.console import Console

    return Console(soft_wrap=False, width=None if os.isatty(1) else 200)


def _iso(when: dt.datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def _open(ctx: click.Context) -> Inventory:
    from certwarden.store.inventory import Inventory

    return Inventory.open(ctx.obj.get("db_url"))


def _table(title: str) -> Table:
    from rich.table import Table

    return Table(title=title, title_justify="left")


def _row(sg: Sighting) -> dict[str, Any]:
    from certwarden.discovery.files import key_problems

    c = sg.certificate
    out: dict[str, Any] = {
        "location": sg.location.uri, "position": sg.position, "sha256": c.sha256,
        "subject": c.subject, "issuer": c.issuer, "kind": str(c.kind), "is_ca": c.is_ca,
        "not_after": _iso(c.not_after), "last_seen": _iso(sg.seen_at),
        "chain": [x.sha256 for x in sg.chain], "tls_version": sg.tls_version,
        "cipher": sg.cipher, "alpn": sg.alpn,
        "file_mode": f"{sg.file_mode:04o}" if sg.file_mode is not None else None,
        "file_owner": sg.file_owner, "key": None}
    if sg.key is not None:
        out["key"] = {"path": sg.key.path, "encrypted": sg.key.encrypted,
                      "problems": key_problems(sg.key)}
    return out


@click.group("inventory")
def inventory_cmd() -> None:
    """Look at the inventory: certificates by location, scans, changes, diffs."""


@inventory_cmd.command("list")
@click.option("--all", "show_all", is_flag=True,
              help="Every sighting ever (default: what each present location has now).")
@click.option("--json", "as_json", is_flag=True, help="JSON list instead of a table.")
@click.pass_context
def list_cmd(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Certificates by location."""
    with _open(ctx) as inv:
        rows = [_row(sg) for sg in inv.sightings(latest_only=not show_all)]
    if as_json:
        emit_json(rows)
        return
    table = _table(f"{len(rows)} sighting(s)")
    for col in ("location", "#", "subject", "kind", "not after", "key", "sha256"):
        table.add_column(col, overflow="fold")
    for r in rows:
        key = "-"
        if r["key"]:
            key = ", ".join(r["key"]["problems"]) or "ok"
        table.add_row(r["location"], str(r["position"]), r["subject"] or "(empty)",
                      r["kind"] + (" CA" if r["is_ca"] else ""), (r["not_after"] or "")[:10],
                      key, r["sha256"][:16] + "…")
    _console().print(table)


@inventory_cmd.command("scans")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def scans_cmd(ctx: click.Context, as_json: bool) -> None:
    """Every scan: kind, targets, start, end, sightings, errors."""
    with _open(ctx) as inv:
        scans = inv.scans()
    rows: list[dict[str, Any]] = [{"id": s.id, "kind": s.kind, "targets": list(s.targets),
             "started_at": _iso(s.started_at), "finished_at": _iso(s.finished_at),
             "sightings": s.sightings, "errors": s.errors} for s in scans]
    if as_json:
        emit_json(rows)
        return
    table = _table(f"{len(rows)} scan(s)")
    for col in ("id", "kind", "targets", "started", "finished", "sightings", "errors"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["id"]), r["kind"], " ".join(r["targets"])[:60],
                      r["started_at"], r["finished_at"] or "(incomplete)",
                      str(r["sightings"]), str(r["errors"]))
    _console().print(table)


@inventory_cmd.command("changes")
@click.option("--scan", "scan_id", type=int, default=None, help="Only this scan's changes.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def changes_cmd(ctx: click.Context, scan_id: int | None, as_json: bool) -> None:
    """Changes recorded by scans: new, changed, gone, back."""
    with _open(ctx) as inv:
        if scan_id is not None:
            inv.scan(scan_id)  # unknown scan: one line, exit 2
        changes = inv.changes(scan_id)
    rows: list[dict[str, Any]] = [{"scan": c.scan_id, "location": c.location, "change": c.change,
             "old_sha256": c.old_sha256, "new_sha256": c.new_sha256, "at": _iso(c.at)}
            for c in changes]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        old = (r["old_sha256"] or "-")[:16]
        new = (r["new_sha256"] or "-")[:16]
        click.echo(f"scan {r['scan']}  {r['change']:<8} {r['location']}  {old} -> {new}")


@inventory_cmd.command("diff")
@click.argument("scan_a", type=int)
@click.argument("scan_b", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def diff_cmd(ctx: click.Context, scan_a: int, scan_b: int, as_json: bool) -> None:
    """What SCAN_B found compared with SCAN_A: new, gone, changed (by leaf certificate)."""
    with _open(ctx) as inv:
        d = inv.diff(scan_a, scan_b)
    if as_json:
        emit_json({"scan_a": d.scan_a, "scan_b": d.scan_b,
                   "new": [{"location": u, "sha256": h} for u, h in d.new],
                   "gone": [{"location": u, "sha256": h} for u, h in d.gone],
                   "changed": [{"location": u, "old_sha256": a, "new_sha256": b}
                               for u, a, b in d.changed],
                   "unchanged": d.unchanged})
        return
    for u, h in d.new:
        click.echo(f"new      {u}  {h[:16]}")
    for u, h in d.gone:
        click.echo(f"gone     {u}  {h[:16]}")
    for u, a, b in d.changed:
        click.echo(f"changed  {u}  {a[:16]} -> {b[:16]}")
    click.echo(f"{len(d.new)} new, {len(d.gone)} gone, {len(d.changed)} changed, "
               f"{d.unchanged} unchanged")


@inventory_cmd.command("owner")
@click.argument("location_glob")
@click.argument("team")
@click.option("--contact", default=None, help="How to reach the team (mail, chat, pager).")
@click.pass_context
def owner_cmd(ctx: click.Context, location_glob: str, team: str, contact: str | None) -> None:
    """Record TEAM as the owner of every location matching LOCATION_GLOB.

    Owners recorded here are used by `certwarden report` after the policy's own owner
    rules (the policy wins where both name one).
    """
    import fnmatch

    if not team.strip():
        fail("the team name is empty")
    with _open(ctx) as inv:
        matched = [u for u in inv.location_uris() if fnmatch.fnmatchcase(u, location_glob)]
        if not matched:
            fail(f"no location in the inventory matches {location_glob!r}")
        for uri in matched:
            inv.set_owner(uri, team.strip(), contact)
    click.echo(f"{team.strip()} now owns {len(matched)} location(s)")


COMMANDS = (inventory_cmd,)
