"""``certwarden inspect``: what is this certificate, file, keystore or endpoint?"""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import TYPE_CHECKING

import click

from certwarden.cli.common import FiniteFloatRange, trust_option
from certwarden.errors import CertwardenError, ParseError, PasswordError, UsageError

if TYPE_CHECKING:
    from certwarden.assess import Finding
    from certwarden.records import Sighting
    from certwarden.x509 import Parsed
    from certwarden.x509.revocation import Crl

MAX_CRL_BYTES = 64 * 1024 * 1024  # a large public CA's CRL is tens of MB

password_option = click.option(
    "--password", envvar="CERTWARDEN_PASSWORD", default=None,
    help="Password for PKCS#12 / JKS / encrypted keys (or env CERTWARDEN_PASSWORD).")


def _looks_like_endpoint(source: str) -> bool:
    if source == "-" or os.path.exists(source):
        return False
    host_port = source.rsplit(":", 1)
    return len(host_port) == 2 and host_port[1].isdigit()


def _load(source: str, password: bytes | None, sni: str | None, timeout: float,
          ) -> list[Parsed | CertwardenError]:
    from certwarden.x509 import Certificate, Format, Parsed, iter_sources

    if _looks_like_endpoint(source):
        from certwarden.discovery.tls_fetch import fetch_chain, split_target

        try:
            host, port = split_target(source)
            hs = fetch_chain(host, port, sni=sni, timeout=timeout)
            certs = tuple(Certificate.from_der(d, source=f"tls://{hs.target}") for d in hs.chain)
            if not certs:
                raise ParseError(source, "server presented no certificate")
            return [Parsed(source=f"tls://{hs.target}", format=Format.DER, certificates=certs)]
        except CertwardenError as exc:
            return [exc]
    if not os.path.exists(source) and source != "-":
        return [ParseError(source, "no such file, directory or host:port")]
    return list(iter_sources([source], password=password))


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


@click.command("inspect")
@click.argument("sources", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per certificate.")
@trust_option
@click.option("--crl", "crl_paths", multiple=True, metavar="FILE",
              help="A CRL (DER or PEM) to honour when verifying with --trust (repeatable).")
@click.option("--sni", default=None, help="Server name to send for host:port sources.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds per connection.",
              type=FiniteFloatRange(0.05, 600))
@click.option("--policy", "policy_path", default=None, metavar="FILE",
              help="Judge with this policy YAML (default: the built-in policy).")
@password_option
def inspect_cmd(sources: tuple[str, ...], as_json: bool, trust: str | None,
                crl_paths: tuple[str, ...], sni: str | None, timeout: float,
                policy_path: str | None, password: str | None) -> None:
    """What is this certificate? SOURCE: file, directory, - (stdin) or host:port."""
    from certwarden.x509 import Parsed

    pw = password.encode() if password is not None else None
    results: list[Parsed | CertwardenError] = []
    for source in sources:
        loaded = _load(source, pw, sni, timeout)
        if pw is None and _interactive() and any(isinstance(r, PasswordError) for r in loaded):
            # A protected keystore and a human at the terminal: ask once, then retry.
            pw = click.prompt(f"password for {source}", hide_input=True).encode()
            loaded = _load(source, pw, sni, timeout)
        results.extend(loaded)
    # A source that held no certificate (a lone key, say) is nothing to show.
    parsed = [r for r in results if isinstance(r, Parsed) and r.certificates]
    errors = [r for r in results if isinstance(r, CertwardenError)]
    if not parsed and errors:
        if len(errors) == 1:
            raise errors[0]
        raise ParseError(f"{len(errors)} sources", f"no certificate read; first: {errors[0]}")
    if not parsed:  # e.g. a directory holding no certificate: say so rather than print nothing
        raise ParseError(sources[0] if len(sources) == 1 else f"{len(sources)} sources",
                         "no certificate found")
    if crl_paths and not trust:
        raise UsageError("--crl is honoured when verifying: give --trust too")
    crls = [_read_crl(p) for p in crl_paths]
    verdicts = _verify(parsed, trust, sni, crls) if trust else {}
    findings = _findings(parsed, trust, policy_path, sni)
    if as_json:
        _print_json(parsed, verdicts, findings)
    else:
        _print_table(parsed, verdicts, findings)
    for err in errors:
        click.echo(f"certwarden: skipped: {err}", err=True)


def _read_crl(path: str) -> Crl:
    from certwarden.x509.parse import read_limited
    from certwarden.x509.revocation import Crl

    return Crl.from_bytes(read_limited(path, MAX_CRL_BYTES, what="a CRL"), origin=path)


def _verify(parsed: list[Parsed], trust: str, sni: str | None, crls: list[Crl],
            ) -> dict[tuple[str, int], list[str]]:
    from certwarden.discovery.tls_fetch import split_target
    from certwarden.x509.verify import Problem, TrustStore, verify_chain

    store = TrustStore.load(trust)
    out: dict[tuple[str, int], list[str]] = {}
    now = dt.datetime.now(dt.UTC)
    for p in parsed:
        if not p.certificates:
            continue
        hostname = None
        if p.source.startswith("tls://"):
            # The name a client checks is the one it asked for: the SNI, else the host.
            hostname = sni or split_target(p.source[6:])[0]
        result = verify_chain(p.certificates[0], p.certificates[1:], store, hostname=hostname,
                              at=now, crls=crls)
        out[(p.source, 0)] = [str(x) for x in result.problems] or ["ok"]
        if result.detail and {Problem.REVOKED, Problem.BAD_CRL} & set(result.problems):
            out[(p.source, 0)].append(f"({result.detail})")
    return out


def _sightings(p: Parsed, sni: str | None = None) -> list[Sighting]:
    from certwarden.records import Location, Sighting

    now = dt.datetime.now(dt.UTC)
    if p.source.startswith("tls://"):
        from certwarden.discovery.tls_fetch import split_target

        host, port = split_target(p.source[6:])
        loc = Location.tls(host, port, sni=sni if sni and sni != host else None)
    else:
        loc = Location.file(p.source)
    leaf_first = p.source.startswith("tls://")
    return [Sighting(certificate=c, location=loc, seen_at=now, position=i,
                     chain=p.certificates[i + 1:] if leaf_first and i == 0 else ())
            for i, c in enumerate(p.certificates)]


def _findings(parsed: list[Parsed], trust: str | None, policy_path: str | None,
              sni: str | None = None) -> dict[str, list[Finding]]:
    """Findings per certificate SHA-256 for what was just read (no inventory needed)."""
    from certwarden.assess import RULE_IDS, default_policy, findings_by_location, load_policy
    from certwarden.x509.verify import TrustStore

    policy = load_policy(policy_path, known_rules=RULE_IDS) if policy_path else default_policy()
    store = TrustStore.load(trust) if trust else None
    sightings = [s for p in parsed for s in _sightings(p, sni)]
    by_cert: dict[str, list[Finding]] = {}
    for found in findings_by_location(sightings, policy=policy, trust=store).values():
        for f in found:
            if f.sha256:
                by_cert.setdefault(f.sha256, []).append(f)
    return by_cert


def _print_json(parsed: list[Parsed], verdicts: dict[tuple[str, int], list[str]],
                findings: dict[str, list[Finding]]) -> None:
    import json

    for p in parsed:
        for i, cert in enumerate(p.certificates):
            obj = cert.as_dict()
            obj["source"] = p.source
            obj["format"] = str(p.format)
            obj["position"] = i
            if (p.source, i) in verdicts:
                obj["verification"] = verdicts[(p.source, i)]
            obj["findings"] = [{"rule": f.rule, "severity": str(f.severity),
                                "message": f.message}
                               for f in _unique(findings.get(cert.sha256, []))]
            click.echo(json.dumps(obj))


def _unique(found: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for f in found:
        seen.setdefault(f.rule, f)
    return sorted(seen.values(), key=lambda f: (-f.severity.rank, f.rule))


def _print_table(parsed: list[Parsed], verdicts: dict[tuple[str, int], list[str]],
                 findings: dict[str, list[Finding]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False, width=None if os.isatty(1) else 160)
    for p in parsed:
        table = Table(title=f"{p.source} ({p.format}, {len(p.certificates)} certificate(s))",
                      title_justify="left", show_lines=False)
        for col in ("#", "subject", "issuer", "kind", "key", "not after", "sha256"):
            table.add_column(col, overflow="fold")
        now = dt.datetime.now(dt.UTC)
        for i, c in enumerate(p.certificates):
            key = f"{c.key.type} {c.key.curve or c.key.bits}"
            expiry = c.not_after.strftime("%Y-%m-%d")
            if c.not_after < now:
                expiry += " (expired)"
            elif c.not_before > now:
                expiry += " (not yet valid)"
            kind = str(c.kind) + (" CA" if c.is_ca else "")
            table.add_row(str(i), c.subject or "(empty)", c.issuer or "(empty)", kind, key,
                          expiry, c.sha256[:16] + "…")
        console.print(table)
        for (src, _), problems in verdicts.items():
            if src == p.source:
                console.print(f"verification: {', '.join(problems)}")
        for i, c in enumerate(p.certificates):
            for f in _unique(findings.get(c.sha256, [])):
                console.print(f"  #{i} [{f.severity}] {f.rule}: {f.message}", markup=False,
                              highlight=False)


COMMANDS = (inspect_cmd,)
