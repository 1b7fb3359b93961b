"""``certwarden replace`` and ``certwarden trust``: move certificates under the private CA,
and hand its root to the clients that must trust it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from certwarden.cli.ca import passphrase_option, passphrase_source
from certwarden.cli.common import ActionFailed, VocabularyChoice, emit_json, fail

# ``lifecycle`` (the store, the CA, cryptography) is imported when a command runs; these
# defaults are its own (tests/unit/test_cli_registry.py holds them equal).
DEFAULT_SELECTION = "self-signed"  # lifecycle.replace.Selection.SELF_SIGNED
DEFAULT_PROFILE = "tls-server"  # lifecycle.replace.DEFAULT_PROFILE
JAVA_DEFAULT_STOREPASS = "changeit"


def _selections() -> list[str]:
    from certwarden.lifecycle.replace import Selection

    return [s.value for s in Selection]


def _bundle_formats() -> list[str]:
    from certwarden.lifecycle.trust import ALL_FORMATS

    return [f.value for f in ALL_FORMATS]


@click.command("replace")
@click.option("--select", "selection", type=VocabularyChoice(_selections),
              default=DEFAULT_SELECTION, show_default=True,
              help="Which leaves to replace: self-signed ones, or all our CA did not issue.")
@click.option("--location", "locations", multiple=True, metavar="GLOB",
              help="Only locations whose URI matches (repeatable), e.g. 'file:///etc/*'.")
@click.option("--apply", "apply_in_place", is_flag=True,
              help="Swap certificate and key files in place (a backup of each is kept).")
@click.option("--dry-run", is_flag=True, help="Show the plan; issue nothing.")
@click.option("--out", "out_dir", default="certwarden-replacements", show_default=True,
              help="Where new files go for locations that cannot be swapped in place.")
@click.option("--profile", default=DEFAULT_PROFILE, show_default=True)
@click.option("--reload", "reload_cmd", default=None, metavar="CMD",
              help="Shell command that reloads the service after --apply (rolled back if it "
                   "fails or the service keeps serving the old certificate).")
@click.option("--config", "config_file", default=None, metavar="FILE",
              help="Lifecycle config: deploy recipes per location, renewal settings.")
@click.option("--json", "as_json", is_flag=True)
@passphrase_option
@click.option("--pin", default=None, help="PKCS#11 PIN when the CA key is in a token.")
@click.pass_context
def replace_cmd(ctx: click.Context, selection: str, locations: tuple[str, ...],
                apply_in_place: bool, dry_run: bool, out_dir: str, profile: str,
                reload_cmd: str | None, config_file: str | None, as_json: bool,
                passphrase_file: str | None, pin: str | None) -> None:
    """Replace self-signed certificates in the inventory with ones from the private CA.

    With --apply, what is deployed is verified, rolled back on failure, and managed from
    then on (`certwarden managed list`, `certwarden renew`).
    """
    import fnmatch
    import os

    from rich.console import Console
    from rich.table import Table

    from certwarden.ca import Authority
    from certwarden.ca.profiles import resolve as resolve_profile
    from certwarden.cli.managed import holder, owner_lookup
    from certwarden.lifecycle import config as lc_config
    from certwarden.lifecycle import replace as rp
    from certwarden.lifecycle.notify import Notifier
    from certwarden.store.ca_ledger import SqlLedger
    from certwarden.store.inventory import Inventory
    from certwarden.store.managed import ManagedStore
    from certwarden.x509 import Certificate

    config = lc_config.load(config_file) if config_file else lc_config.LifecycleConfig()
    db = ctx.obj.get("db_url")
    ledger = SqlLedger.open(db)
    ctx.call_on_close(ledger.close)
    ours = frozenset(Certificate.from_der(i.certificate_der).subject for i in ledger.issuers())
    with Inventory.open(db) as inventory, ManagedStore.open(db) as store:
        every = list(inventory.sightings())
        # Planned on everything, then narrowed: a TLS endpoint serving the same certificate as
        # a selected file is verified with it even when the glob names only the file.
        items = [i for i in rp.plan(every, selection=rp.Selection(selection),
                                    our_issuers=ours, config=config,
                                    issuers=rp.issuer_names(every))
                 if not locations or any(fnmatch.fnmatchcase(u, g) for g in locations
                                         for u in (i.location, *i.served))]
        if dry_run or not items:
            results = [rp.Result(item=i, status=rp.Status.PLANNED if i.action is not rp.Action.SKIP
                                 else rp.Status.SKIPPED) for i in items]
        else:
            authority = Authority.open(ledger, passphrase=passphrase_source(passphrase_file),
                                       pin=pin)
            # One bad --profile would refuse every item: say so once, exit 2, issue nothing.
            resolve_profile(profile, authority.config.profiles)
            notifier = Notifier(store=store, cfg=config.notifications,
                                owner_of=owner_lookup(inventory, config))
            deployer = rp.Deployer(config=config, reload=reload_cmd, store=store,
                                   env=dict(os.environ), events=notifier)
            results = rp.execute(items, authority, out_dir=out_dir, apply_in_place=apply_in_place,
                                 profile=profile, now=dt.datetime.now(dt.UTC), deployer=deployer)
            rp.rescan_files(inventory, results)
            notifier.deliver(owner=holder())
    failed = [r for r in results if r.status in (rp.Status.ROLLED_BACK, rp.Status.FAILED)]
    if as_json:
        emit_json([r.as_dict() for r in results])
        if failed:
            raise ActionFailed(f"{failed[0].status}: {failed[0].reason}")
        return
    if not results:
        click.echo("nothing to replace: no matching leaf in the inventory")
        return
    table = Table(title=f"replacement plan ({len(results)} location(s))", title_justify="left")
    for col in ("location", "names", "action", "status", "detail"):
        table.add_column(col, overflow="fold")
    for r in results:
        detail = r.reason or (", ".join(r.paths) if r.paths else r.item.reason)
        table.add_row(r.item.location, ", ".join(r.item.names), str(r.item.action),
                      str(r.status), detail)
    Console().print(table)
    if failed:
        raise ActionFailed(f"{failed[0].status}: {failed[0].reason}")


@click.group("trust")
def trust() -> None:
    """Distribute the private CA's root to the clients that must trust it."""


@trust.command("bundle")
@click.option("--out", "out_dir", required=True, help="Directory to write the bundles into.")
@click.option("--format", "formats", multiple=True,
              type=VocabularyChoice(_bundle_formats),
              help="Repeatable; default: every format.")
@click.option("--storepass", default=JAVA_DEFAULT_STOREPASS, show_default=True,
              help="Password of the Java truststores (they hold no secret).")
@click.option("--namespace", default=None, help="Namespace for the Kubernetes ConfigMap.")
@click.option("--extra", "extras", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Another CA certificate (PEM/DER) to include (repeatable).")
@click.pass_context
def bundle(ctx: click.Context, out_dir: str, formats: tuple[str, ...], storepass: str,
           namespace: str | None, extras: tuple[str, ...]) -> None:
    """Write the root as a PEM bundle, JKS and PKCS#12 truststores, and a ConfigMap."""
    from certwarden.lifecycle.trust import ALL_FORMATS, BundleFormat, own_anchors, write_bundles
    from certwarden.store.ca_ledger import SqlLedger
    from certwarden.x509 import read_source

    ledger = SqlLedger.open(ctx.obj.get("db_url"))
    ctx.call_on_close(ledger.close)
    anchors = list(own_anchors(ledger))
    for path in extras:
        extra = read_source(path).certificates
        if not extra:  # a key file, say: naming it and adding nothing would mislead
            fail(f"{path}: no certificate in it")
        anchors.extend(extra)
    if not anchors:
        fail("no private CA root in this inventory (run `certwarden ca init` first)")
    written = write_bundles(anchors, Path(out_dir),
                            formats=[BundleFormat(f) for f in formats] or ALL_FORMATS,
                            store_password=storepass, namespace=namespace)
    for w in written:
        click.echo(f"{w.format}: {w.path} ({w.anchors} anchor(s))")


COMMANDS = (replace_cmd, trust)
