"""``certwarden demo``: a sandbox estate on 127.0.0.1, discovered, assessed and reported.

It starts the services of ``demo_estate`` (every rule has one), writes a folder of
certificate and key files, discovers both into a fresh inventory, prints the assessment,
writes the HTML report, and stops everything it started -- also on Ctrl-C or an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import os
import socket
import ssl
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
from certwarden.discovery.tls_fetch import fetch_chain, presented_chain, scanner_context
from certwarden.errors import CertwardenError, ConnectError, ParseError, UsageError
from certwarden.records import KeyFile, Location, LocationKind, Sighting
from certwarden.report import ReportFormat, build, render, to_html
from certwarden.x509 import Certificate, read_source


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRun:
    assessment: Assessment
    estate: Estate
    ports: dict[str, int]
    folder: Path
    report: Path
    seconds: float
    discovery: str  # which discovery path ran

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
        found = _discover_engine(sandbox, folder, workdir)
        if found is None:
            sightings, how = _discover(sandbox, folder, workdir)
            certificates: list[Certificate] = []
        else:
            sightings, certificates, how = found
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


def _discover_engine(sandbox: Sandbox, folder: Path, workdir: Path,
                     ) -> tuple[list[Sighting], list[Certificate], str] | None:
    """The real thing: ``certwarden scan`` and ``discover files`` into a fresh inventory."""
    needed = ("certwarden.store.inventory", "certwarden.cli.scan", "certwarden.cli.discover")
    if any(importlib.util.find_spec(m) is None for m in needed):
        return None  # discovery not installed in this build: _discover does it directly
    from certwarden.cli import main
    from certwarden.cli.report import read_inventory

    db = workdir / "inventory.db"
    if db.exists():
        db.unlink()  # a fresh inventory every run
    url = f"sqlite:///{db}"
    targets = [f"{HOST}:{port}" for _, port in sandbox.endpoints()]
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        scan = main(["--db", url, "scan", "--timeout", "5", *targets])
        files = main(["--db", url, "discover", "files", str(folder)])
    if scan or files:
        raise UsageError(f"demo discovery failed: {' '.join(said.getvalue().split())[-300:]}")
    sightings, certificates, _ = read_inventory(url)
    return sightings, certificates, f"certwarden scan + discover files into {url}"


def _discover(sandbox: Sandbox, folder: Path, workdir: Path) -> tuple[list[Sighting], str]:
    """Direct discovery: one handshake per service (SMTP via STARTTLS) and a file read."""
    now = dt.datetime.now(dt.UTC)
    out: list[Sighting] = []
    for svc, port in sandbox.endpoints():
        try:
            if svc.starttls == "smtp":
                chain, version, cipher = _smtp_chain(HOST, port)
                loc = Location.tls(HOST, port, starttls="smtp")
            else:
                hs = fetch_chain(HOST, port, timeout=5)
                chain, version, cipher = hs.chain, hs.tls_version, hs.cipher
                loc = Location.tls(HOST, port)
            certs = [Certificate.from_der(d, source=loc.uri) for d in chain]
        except CertwardenError as exc:
            click.echo(f"certwarden: demo: {exc}", err=True)
            continue
        out.append(Sighting(certificate=certs[0], location=loc, seen_at=now,
                            chain=tuple(certs[1:]), tls_version=version, cipher=cipher))
    for path in sorted(folder.iterdir()):
        if path.suffix != ".pem":
            continue
        try:
            parsed = read_source(str(path))
        except ParseError as exc:
            click.echo(f"certwarden: demo: {exc}", err=True)
            continue
        key = _key_beside(path)
        for i, cert in enumerate(parsed.certificates):
            out.append(Sighting(certificate=cert, location=Location.file(str(path)), seen_at=now,
                                position=i, key=key if i == 0 else None,
                                file_mode=path.stat().st_mode & 0o777))
    return out, "direct (tls_fetch + file parser)"


def _key_beside(cert_path: Path) -> KeyFile | None:
    key = cert_path.with_suffix(".key")
    if not key.exists():
        return None
    data = key.read_bytes()
    return KeyFile(path=str(key), encrypted=b"ENCRYPTED" in data,
                   mode=key.stat().st_mode & 0o777)


def _smtp_chain(host: str, port: int) -> tuple[tuple[bytes, ...], str | None, str | None]:
    target = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=5) as raw:
            f = raw.makefile("rb")
            _expect(f, b"220", target)
            raw.sendall(b"EHLO certwarden.demo\r\n")
            _expect(f, b"250", target)
            raw.sendall(b"STARTTLS\r\n")
            _expect(f, b"220", target)
            with scanner_context(alpn=()).wrap_socket(raw, server_hostname=None) as tls:
                cipher = tls.cipher()
                return presented_chain(tls), tls.version(), cipher[0] if cipher else None
    except (OSError, ssl.SSLError) as exc:
        raise ConnectError(target, f"SMTP STARTTLS failed ({exc})") from None


def _expect(f: object, code: bytes, target: str) -> None:
    while True:
        line = f.readline()  # type: ignore[attr-defined]
        if not line.startswith(code):
            raise ConnectError(target, f"SMTP: expected {code.decode()}, got {line[:60]!r}")
        if line[3:4] != b"-":
            return


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
