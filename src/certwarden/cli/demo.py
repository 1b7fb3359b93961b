"""``certwarden demo``: a sandbox estate on 127.0.0.1, discovered, assessed and reported.

It starts the services of ``demo_estate`` (every rule has one), writes a folder of
certificate and key files, discovers both into a fresh inventory, prints the assessment,
writes the HTML report, and stops everything it started -- also on Ctrl-C or an error.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from certwarden.errors import UsageError
from certwarden.records import LocationKind, Sighting, frozen_map

if TYPE_CHECKING:
    from certwarden.assess import Assessment
    from certwarden.cli.demo_estate import DemoEstate, Sandbox
    from certwarden.x509 import Certificate


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRun:
    assessment: Assessment
    estate: DemoEstate
    ports: Mapping[str, int]
    folder: Path
    report: Path
    seconds: float
    discovery: str  # what discovered the estate, and into which inventory

    def __post_init__(self) -> None:
        object.__setattr__(self, "ports", frozen_map(self.ports))

    def expected(self) -> dict[str, frozenset[str]]:
        """Expected rules per place: ``tls:PORT`` or ``file:NAME`` -> rule ids."""
        out = {f"tls:{self.ports[s.name]}": s.expected for s in self.estate.services}
        out.update({f"file:{f.name}": f.expected for f in self.estate.files})
        return out

    def found(self) -> dict[str, frozenset[str]]:
        """Rules that fired per place (same keys as ``expected``)."""
        places: dict[str, str] = {}
        for s in self.assessment.sightings:
            loc = s.location
            if loc.kind is LocationKind.TLS:
                places[loc.uri] = f"tls:{loc.port}"
            elif loc.kind is LocationKind.FILE and loc.path:
                places[loc.uri] = f"file:{os.path.basename(loc.path)}"
        out: dict[str, set[str]] = {k: set() for k in self.expected()}
        for f in self.assessment.findings:
            if f.rule == "exception-expired":
                continue
            key = places.get(f.location or "", f.location or "?")
            out.setdefault(key, set()).add(f.rule)
        return {k: frozenset(v) for k, v in out.items()}


def run_demo(workdir: Path, *, echo: bool = True) -> DemoRun:
    from certwarden.assess import assess, load_trust, parse_policy
    from certwarden.assess.forecast import forecast
    from certwarden.assess.rules import RULE_IDS
    from certwarden.cli.demo_estate import (
        HOST,
        CrlPublisher,
        Sandbox,
        build_estate,
        policy_yaml,
        write_folder,
    )
    from certwarden.lifecycle.revocation import fetcher_for, gather
    from certwarden.report import build, to_html

    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    crls = CrlPublisher()
    estate = build_estate(now, crl_url=crls.url)
    folder = workdir / "estate-files"
    write_folder(estate, folder)
    anchor = workdir / "trust" / "demo-corp-root.pem"
    anchor.parent.mkdir(parents=True, exist_ok=True)
    anchor.write_bytes(estate.root.pem())
    sandbox = Sandbox(estate, workdir / "service-keys")
    try:
        crls.start(estate.crl_der)
        sandbox.start()
        if echo:
            click.echo(f"sandbox: {len(sandbox.ports)} TLS services on {HOST} "
                       f"(ports {min(sandbox.ports.values())}-{max(sandbox.ports.values())}), "
                       f"{len(estate.files)} files in {folder}", err=True)
        policy_path = workdir / "demo-policy.yaml"
        policy_path.write_text(policy_yaml(estate, folder, anchor, sandbox.ports, now.date()),
                               encoding="utf-8")
        sightings, certificates, how = _discover(sandbox, folder, workdir)
        policy = parse_policy(policy_path.read_text(encoding="utf-8"),
                              source=str(policy_path), known_rules=RULE_IDS)
        revocations = gather(sightings, certificates, ledger=None,
                             fetcher=fetcher_for(policy)).index
    finally:
        sandbox.stop()
        crls.stop()
    result = assess(sightings, certificates=certificates, policy=policy,
                    trust=load_trust(policy), revocations=revocations)
    report = workdir / "report.html"
    report.write_text(to_html(build(result, forecast(result.certificates))), encoding="utf-8")
    return DemoRun(assessment=result, estate=estate, ports=dict(sandbox.ports), folder=folder,
                   report=report, seconds=time.monotonic() - started, discovery=how)


def _discover(sandbox: Sandbox, folder: Path, workdir: Path,
              ) -> tuple[list[Sighting], list[Certificate], str]:
    """The network scan and the file sweep into a fresh inventory, through its recorder."""
    import asyncio

    from certwarden.cli.demo_estate import HOST
    from certwarden.cli.report import read_inventory
    from certwarden.discovery.files import sweep
    from certwarden.discovery.net import Scanner, ScanOptions
    from certwarden.discovery.targets import endpoints, read_targets
    from certwarden.store.inventory import Inventory

    db = workdir / "inventory.db"
    if db.exists():
        db.unlink()  # a fresh inventory every run
    url = f"sqlite:///{db}"
    # Two scans of the same host: most ports first, then the other ports (the rescan must
    # not mark the first scan's locations gone). Services clients reach by name: NAME@.
    named = [f"{svc.sni}@{HOST}:{port}" for svc, port in sandbox.endpoints() if svc.sni]
    first = tuple(p for svc, p in sandbox.endpoints() if not svc.sni and not svc.rescan)
    later = tuple(p for svc, p in sandbox.endpoints() if not svc.sni and svc.rescan)
    options = ScanOptions(connect_timeout=5, handshake_timeout=5)
    with Inventory.open(url) as inv:
        for targets, ports in (([HOST, *named], first), ([HOST], later)):
            if not ports:
                continue
            with inv.record("net", targets) as rec:
                eps = endpoints(read_targets(targets), ports)
                asyncio.run(rec.stream(Scanner(options).scan(eps)))
        with inv.record("files", [str(folder)]) as rec:
            rec.add_all(sweep([str(folder)]))
    sightings, certificates, _ = read_inventory(url)
    return sightings, certificates, f"network scan + file sweep into {url}"


@click.command("demo")
@click.option("--workdir", default=None, metavar="DIR",
              help="Keep the estate files, policy and report here (default: a new temp dir).")
def demo_cmd(workdir: str | None) -> None:
    """A sandbox estate on 127.0.0.1: discover it, assess it, write the HTML report."""
    import tempfile

    from certwarden.report import ReportFormat, render

    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="certwarden-demo-"))
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{base}: cannot create the directory ({exc.strerror or exc})") from None
    run = run_demo(base)
    click.echo(render(run.assessment, ReportFormat.TABLE), nl=False)
    expected, found = run.expected(), run.found()
    hits = sum(len(expected[k] & found.get(k, frozenset())) for k in expected)
    total = sum(len(v) for v in expected.values())
    extra = sum(len(found.get(k, frozenset()) - expected.get(k, frozenset())) for k in found)
    click.echo(f"\nverdicts vs the sandbox's ground truth: {hits}/{total} expected findings, "
               f"{extra} unexpected; discovery: {run.discovery}; {run.seconds:.1f} s")
    click.echo(f"HTML report: {run.report}")
    click.echo(f"policy used: {base / 'demo-policy.yaml'} (all services stopped)")
    from certwarden.cli.demo_lifecycle import run_lifecycle

    click.echo("\nlifecycle: the self-signed services move under the private CA")
    for line in run_lifecycle(run.estate, base):
        click.echo(f"  {line}")


COMMANDS = (demo_cmd,)
