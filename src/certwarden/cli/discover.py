"""``certwarden discover files|k8s``: certificates in files, keystores and Kubernetes."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import click

from certwarden.cli import emit_json, fail
from certwarden.discovery.files import SweepOptions, key_problems, sweep
from certwarden.discovery.k8s import read_cluster, read_dump
from certwarden.records import Outcome, OutcomeStatus, Sighting
from certwarden.store.inventory import Inventory

passwords_option = click.option(
    "--password", "passwords", multiple=True, metavar="P",
    help="Password to try on PKCS#12 / JKS / encrypted keys (repeatable).")
json_option = click.option("--json-out", "json_out", default=None, metavar="FILE",
                           help="Write the sightings as JSON (- for stdout).")


def _sighting_json(sg: Sighting) -> dict[str, Any]:
    obj: dict[str, Any] = {"location": sg.location.uri, "position": sg.position,
                           "certificate": sg.certificate.as_dict(),
                           "file_mode": f"{sg.file_mode:04o}" if sg.file_mode is not None
                           else None, "file_owner": sg.file_owner}
    if sg.key is not None:
        obj["key"] = {"path": sg.key.path, "encrypted": sg.key.encrypted,
                      "mode": f"{sg.key.mode:04o}" if sg.key.mode is not None else None,
                      "owner": sg.key.owner, "problems": key_problems(sg.key)}
    return obj


def _store(ctx: click.Context, kind: str, targets: list[str],
           results: Iterable[Sighting | Outcome], json_out: str | None) -> None:
    warnings: list[str] = []
    collected: list[dict[str, Any]] = []
    with Inventory.open(ctx.obj.get("db_url")) as inv, inv.record(kind, targets) as rec:
        for item in results:
            rec.add(item)
            if isinstance(item, Sighting):
                if json_out is not None:
                    collected.append(_sighting_json(item))
                if item.key is not None and item.position == 0:
                    for problem in key_problems(item.key):
                        warnings.append(f"{item.key.path}: private key {problem} "
                                        f"(certificate {item.certificate.subject})")
            elif item.status is not OutcomeStatus.OK:
                warnings.append(f"{item.location}: {item.status}"
                                + (f" ({item.reason})" if item.reason else ""))
    if json_out is not None:
        emit_json(collected, json_out)
    if json_out != "-":
        for line in dict.fromkeys(warnings):
            click.echo(f"certwarden: {line}", err=True)
        detail = ", ".join(f"{v} {k}" for k, v in sorted(rec.outcomes.items())
                           if k is not OutcomeStatus.OK)
        click.echo(f"{kind} scan {rec.scan_id}: {rec.sightings} certificate(s) in "
                   f"{rec.outcomes[OutcomeStatus.OK]} source(s)"
                   + (f"; {detail}" if detail else ""))


@click.group("discover")
def discover_cmd() -> None:
    """Discover certificates in files, keystores and Kubernetes into the inventory."""


@discover_cmd.command("files")
@click.argument("paths", nargs=-1, required=True)
@passwords_option
@click.option("--max-size", default=16 * 1024 * 1024, show_default=True,
              type=click.IntRange(1, 1 << 31), help="Skip files bigger than this (bytes).")
@json_option
@click.pass_context
def files_cmd(ctx: click.Context, paths: tuple[str, ...], passwords: tuple[str, ...],
              max_size: int, json_out: str | None) -> None:
    """Walk PATHs for PEM/DER/PKCS#7/PKCS#12/JKS by content; pair keys with certificates."""
    missing = [p for p in paths if not os.path.lexists(p)]
    if missing:
        fail(f"{missing[0]}: no such file or directory")
    options = SweepOptions(passwords=tuple(p.encode() for p in passwords), max_size=max_size)
    _store(ctx, "files", list(paths), sweep(list(paths), options), json_out)


@discover_cmd.command("k8s")
@click.option("--kubeconfig", default=None, metavar="FILE", help="Default: $KUBECONFIG.")
@click.option("--context", "context", default=None, help="kubeconfig context to use.")
@click.option("--namespace", "-n", default=None, help="One namespace (default: all).")
@click.option("--from-file", "dump", default=None, metavar="DUMP",
              help="Read a `kubectl get secrets,configmaps -A -o yaml|json` dump instead.")
@passwords_option
@json_option
@click.pass_context
def k8s_cmd(ctx: click.Context, kubeconfig: str | None, context: str | None,
            namespace: str | None, dump: str | None, passwords: tuple[str, ...],
            json_out: str | None) -> None:
    """Secrets (TLS, Opaque with PEM/PKCS#12/JKS) and ConfigMaps with CA bundles."""
    pws = tuple(p.encode() for p in passwords)
    if dump:
        results: Iterable[Any] = read_dump(dump, context=context or "dump", passwords=pws)
        targets = [f"file:{dump}"]
    else:
        results = read_cluster(kubeconfig=kubeconfig, context=context, namespace=namespace,
                               passwords=pws)
        targets = [f"context:{context or '(current)'}", f"namespace:{namespace or '*'}"]
    # Read the first item before opening a scan: a bad dump or kubeconfig is one line, exit 2.
    it = iter(results)
    first = next(it, None)
    _store(ctx, "k8s", targets, _chain(first, it), json_out)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is not None:
        yield first
    yield from rest


COMMANDS = (discover_cmd,)
