"""``certwarden demo``: a sandbox estate on 127.0.0.1, discovered, assessed and reported.

It starts the services of ``demo_estate`` (every rule has one), writes a folder of
certificate and key files, discovers both into a fresh inventory, prints the assessment,
writes the HTML report, and stops everything it started -- also on Ctrl-C or an error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click

from certwarden.assess import Assessment, assess, load_trust, parse_policy
from certwarden.assess.forecast import forecast
from certwarden.assess.rules import RULE_IDS
from certwarden.cli.demo_estate import (
    HOST,
    Estate,
    Sandbox,
    build_estate,
    policy_yaml,
    write_folder,
)
from certwarden.cli.report import read_inventory
from certwarden.discovery.files import sweep
from certwarden.discovery.net import Scanner, ScanOptions
from certwarden.discovery.targets import DEFAULT_PORTS, endpoints, read_targets
from certwarden.errors import UsageError
from certwarden.records import LocationKind, Sighting
from certwarden.report import ReportFormat, build, render, to_html
from certwarden.store.inventory import Inventory
from certwarden.x509 import Certificate


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRun:
    assessment: Assessment
    estate: Estate
    ports: dict[str, int]
    folder: Path
    report: Path
    seconds: float
    discovery: str  # what discovered the estate, and into which inventory

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
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    estate = build_estate(now)
    folder = workdir / "estate-files"
    write_folder(estate, folder)
    anchor = workdir / "trust" / "demo-corp-root.pem"
    anchor.parent.mkdir(parents=True, exist_ok=True)
    anchor.write_bytes(estate.root.pem())
    sandbox = Sandbox(estate, workdir / "service-keys")
    try:
        sandbox.start()
        if echo:
            click.echo(f"sandbox: {len(sandbox.ports)} TLS services on {HOST} "
                       f"(ports {min(sandbox.ports.values())}-{max(sandbox.ports.values())}), "
                       f"{len(estate.files)} files in {folder}", err=True)
        policy_path = workdir / "demo-policy.yaml"
        policy_path.write_text(policy_yaml(estate, folder, anchor, sandbox.ports, now.date()),
                               encoding="utf-8")
        sightings, certificates, how = _discover(sandbox, folder, workdir)
    finally:
        sandbox.stop()
    policy = parse_policy(policy_path.read_text(encoding="utf-8"), source=str(policy_path),
                          known_rules=RULE_IDS)
    result = assess(sightings, certificates=certificates, policy=policy,
                    trust=load_trust(policy))
    report = workdir / "report.html"
    report.write_text(to_html(build(result, forecast(result.certificates))), encoding="utf-8")
    return DemoRun(assessment=result, estate=estate, ports=dict(sandbox.ports), folder=folder,
                   report=report, seconds=time.monotonic() - started, discovery=how)


def _discover(sandbox: Sandbox, folder: Path, workdir: Path,
              ) -> tuple[list[Sighting], list[Certificate], str]:
    """The network scan and the file sweep into a fresh inventory, through its recorder."""
    db = workdir / "inventory.db"
    if db.exists():
        db.unlink()  # a fresh inventory every run
    url = f"sqlite:///{db}"
    targets = [f"{HOST}:{port}" for _, port in sandbox.endpoints()]
    options = ScanOptions(connect_timeout=5, handshake_timeout=5)
    with Inventory.open(url) as inv:
        with inv.record("net", targets) as rec:
            eps = endpoints(read_targets(targets), DEFAULT_PORTS)
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
