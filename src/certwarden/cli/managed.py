"""``certwarden managed list``, ``certwarden renew``, ``certwarden agent``: the certificates
certwarden keeps renewing, and the loop that keeps them so."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import socket
from typing import TYPE_CHECKING, Any

import click

from certwarden.cli.ca import passphrase_option, passphrase_source
from certwarden.cli.common import ActionFailed, emit_json

if TYPE_CHECKING:  # imported where used: registering the verbs stays cheap (test_cli_registry)
    from certwarden.ca import Authority
    from certwarden.lifecycle import config as lc_config
    from certwarden.lifecycle.renew import Renewer
    from certwarden.store.managed import ManagedStore


def _iso(when: dt.datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def holder() -> str:
    """Who holds a lease: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def load_config(path: str | None) -> lc_config.LifecycleConfig:
    from certwarden.lifecycle import config as lc_config

    return lc_config.load(path) if path else lc_config.LifecycleConfig()


config_option = click.option("--config", "config_file", default=None, metavar="FILE",
                             help="Lifecycle config (YAML): deploy, renewal, schedules, "
                                  "notifications.")


@click.group("managed")
def managed_group() -> None:
    """The managed certificates: what certwarden deployed and keeps renewing."""


@managed_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool, config_file: str | None) -> None:
    """Each managed certificate with its state and next renewal time."""
    from rich.console import Console
    from rich.table import Table

    from certwarden.store.managed import ManagedStore

    cfg = load_config(config_file)
    now = dt.datetime.now(dt.UTC)
    with ManagedStore.open(ctx.obj.get("db_url")) as store:
        rows: list[dict[str, Any]] = []
        for m in store.all():
            deliveries = store.deliveries(managed_id=m.id)
            rows.append({
                "id": m.id, "names": list(m.names), "profile": m.profile,
                "key_policy": str(m.key_policy),
                "state": str(m.state(now, max_failures=cfg.renewal.attempts)),
                "next_renewal": _iso(m.next_renewal()), "renew_at": _iso(m.renew_at),
                "not_before": _iso(m.not_before), "not_after": _iso(m.not_after),
                "serial": m.serial, "sha256": m.sha256, "locations": list(m.locations),
                "failures": m.failures, "last_error": m.last_error,
                "recipe": m.recipe,
                "attempts": [{"kind": str(a.kind), "outcome": str(a.outcome),
                              "serial": a.serial, "reason": a.reason, "actor": a.actor,
                              "at": _iso(a.finished_at)} for a in store.attempts(m.id)],
                "notifications": [{"event": d.event, "channel": d.channel,
                                   "target": d.target, "status": str(d.status),
                                   "attempts": d.attempts, "last_error": d.last_error}
                                  for d in deliveries]})
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} managed certificate(s)", title_justify="left")
    for col in ("id", "names", "state", "next renewal", "not after", "locations", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows:
        failing = [n for n in r["notifications"] if n["status"] != "sent"]
        detail = r["last_error"] or ""
        if failing:
            detail += (" " if detail else "") + (f"{len(failing)} notification(s) undelivered: "
                                                 f"{failing[0]['last_error'] or 'pending'}")
        table.add_row(str(r["id"]), ", ".join(r["names"]), r["state"], r["next_renewal"],
                      r["not_after"], "\n".join(r["locations"]), detail)
    Console(width=None if os.isatty(1) else 200).print(table)


def renewer(ctx: click.Context, store: ManagedStore, cfg: lc_config.LifecycleConfig,
            passphrase_file: str | None, pin: str | None) -> Renewer:
    """The renewer the CLI and the agent use: CA opened lazily, files swept after deploy."""
    from certwarden.ca import Authority
    from certwarden.lifecycle.notify import Notifier
    from certwarden.lifecycle.renew import Renewer
    from certwarden.lifecycle.replace import sweep_paths
    from certwarden.store.ca_ledger import SqlLedger
    from certwarden.store.inventory import Inventory

    db = ctx.obj.get("db_url")

    @functools.cache
    def authority() -> Authority:
        ledger = SqlLedger.open(db)
        ctx.call_on_close(ledger.close)
        return Authority.open(ledger, passphrase=passphrase_source(passphrase_file), pin=pin)

    def after_deploy(paths: Any) -> None:
        with Inventory.open(db) as inv:
            sweep_paths(inv, paths)

    inv = Inventory.open(db)
    ctx.call_on_close(inv.close)
    notifier = Notifier(store=store, cfg=cfg.notifications, owner_of=owner_lookup(inv, cfg))
    return Renewer(store=store, authority=authority, cfg=cfg.renewal, owner=holder(),
                   events=notifier, env=dict(os.environ), after_deploy=after_deploy)


@click.command("renew")
@click.option("--due", "due", is_flag=True, default=True,
              help="Renew those whose renewal time has come (the default).")
@click.option("--force", is_flag=True, help="Renew the selected ones now, due or not.")
@click.option("--dry-run", is_flag=True, help="Show what would be renewed; issue nothing.")
@click.option("--location", "globs", multiple=True, metavar="GLOB",
              help="Only managed certificates with a location matching (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@config_option
@passphrase_option
@click.option("--pin", default=None, help="PKCS#11 PIN when the CA key is in a token.")
@click.pass_context
def renew_cmd(ctx: click.Context, due: bool, force: bool, dry_run: bool,
              globs: tuple[str, ...], as_json: bool, config_file: str | None,
              passphrase_file: str | None, pin: str | None) -> None:
    """Renew managed certificates (exactly once, even with several renewers at once)."""
    from certwarden.lifecycle.notify import Notifier
    from certwarden.lifecycle.renew import RenewStatus
    from certwarden.store.managed import ManagedStore

    cfg = load_config(config_file)
    with ManagedStore.open(ctx.obj.get("db_url")) as store:
        r = renewer(ctx, store, cfg, passphrase_file, pin)
        outcomes = r.run(due_only=not force, globs=globs, dry_run=dry_run)
        if not dry_run and isinstance(r.events, Notifier):
            r.events.deliver(owner=holder())
    bad = [o for o in outcomes if o.status in (RenewStatus.ROLLED_BACK, RenewStatus.FAILED,
                                               RenewStatus.REFUSED)]
    if as_json:
        emit_json([o.as_dict() for o in outcomes])
    elif not outcomes:
        click.echo("nothing to renew")
    else:
        for o in outcomes:
            tail = f" serial {o.serial}" if o.serial and o.status is RenewStatus.RENEWED else ""
            why = f": {o.location}: {o.reason}" if o.reason else ""
            click.echo(f"{o.managed_id:>4} {', '.join(o.names)}  {o.status}{tail}{why}")
    if bad:
        raise ActionFailed(f"{bad[0].status}: {bad[0].location}: {bad[0].reason}")


@click.command("agent")
@config_option
@click.option("--once", is_flag=True, help="Run one round (every job that is due), then exit.")
@passphrase_option
@click.option("--pin", default=None, help="PKCS#11 PIN when the CA key is in a token.")
@click.pass_context
def agent_cmd(ctx: click.Context, config_file: str | None, once: bool,
              passphrase_file: str | None, pin: str | None) -> None:
    """Scheduled discovery, renewals and notifications; stops cleanly on SIGTERM."""
    import json
    import signal
    import sys
    import threading

    from certwarden.lifecycle.agent import Agent
    from certwarden.lifecycle.notify import Notifier
    from certwarden.store.inventory import Inventory
    from certwarden.store.managed import ManagedStore

    cfg = load_config(config_file)
    db = ctx.obj.get("db_url")

    def log(record: Any) -> None:
        line = {"ts": _iso(dt.datetime.now(dt.UTC)), **record}
        click.echo(json.dumps(line, default=str, sort_keys=False), err=False)
        sys.stdout.flush()

    with ManagedStore.open(db) as store, Inventory.open(db) as inv:
        owners = owner_lookup(inv, cfg)
        notifier = Notifier(store=store, cfg=cfg.notifications, owner_of=owners)
        r = dataclasses.replace(renewer(ctx, store, cfg, passphrase_file, pin), events=notifier)
        agent = Agent(store=store, inventory=inv, config=cfg, renewer=r, notifier=notifier,
                      owner=holder(), log=log)
        if once:
            agent.round()
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        agent.run(stop)


def owner_lookup(inv: Any, cfg: lc_config.LifecycleConfig) -> Any:
    """Location -> (team, contact): the policy's owners first, then `inventory owner`."""
    policy = None
    if cfg.policy:
        from certwarden.assess.policy import load_policy

        policy = load_policy(cfg.policy, known_rules=None)

    def owner_of(uri: str) -> tuple[str, str | None] | None:
        if policy is not None and (o := policy.owner_of(uri)) is not None:
            return o.team, o.contact
        found: tuple[str, str | None] | None = inv.owners().get(uri)  # fresh: owners change
        return found

    return owner_of


COMMANDS = (managed_group, renew_cmd, agent_cmd)
