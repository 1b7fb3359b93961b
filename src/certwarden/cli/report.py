"""``certwarden report`` and ``certwarden forecast``: assess the inventory, write the verdict."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from certwarden.cli.common import Findings, VocabularyChoice, fail, trust_option, write_text
from certwarden.records import Severity

if TYPE_CHECKING:
    from certwarden.assess import Assessment, Policy
    from certwarden.records import Sighting
    from certwarden.x509 import Certificate
    from certwarden.x509.revocation import RevocationIndex

_SEVERITIES = [s.value for s in Severity]
_YEARS_HELP = "Years to forecast, YYYY..YYYY (default 2026..2030)."


def read_inventory(db_url: str,
                   ) -> tuple[list[Sighting], list[Certificate], dict[str, tuple[str, str | None]]]:
    """Every latest sighting, every certificate, and the owners recorded in the inventory."""
    from certwarden.store.inventory import Inventory

    with Inventory.open(db_url) as inv:
        return list(inv.sightings(latest_only=True)), list(inv.certificates()), inv.owners()


def policy_from(path: str | None) -> Policy:
    from certwarden.assess import RULE_IDS, default_policy, load_policy

    return load_policy(path, known_rules=RULE_IDS) if path else default_policy()


def years_from(text: str | None) -> range:
    from certwarden.assess.forecast import DEFAULT_YEARS, parse_years

    if text is None:
        return DEFAULT_YEARS
    try:
        return parse_years(text)
    except ValueError as exc:
        fail(str(exc))


def own_ca_anchors(db_url: str) -> tuple[Certificate, ...]:
    """The roots of the CA recorded beside this inventory (none when there is no CA)."""
    from certwarden.lifecycle.trust import own_anchors
    from certwarden.store.ca_ledger import SqlLedger

    ledger = SqlLedger.open(db_url)
    try:
        return own_anchors(ledger)
    finally:
        ledger.close()


def revocations_for(db_url: str, policy: Policy, sightings: list[Sighting],
                    certificates: list[Certificate]) -> RevocationIndex:
    """Our CA's ledger, plus the CRLs and OCSP answers the policy opts in to fetching."""
    from certwarden.lifecycle.revocation import fetcher_for, gather
    from certwarden.settings import data_dir
    from certwarden.store.ca_ledger import SqlLedger

    fetcher = fetcher_for(policy, cache_dir=data_dir(os.environ) / "revocation-cache")
    ledger = SqlLedger.open(db_url)
    try:
        found = gather(sightings, certificates, ledger=ledger, fetcher=fetcher)
    finally:
        ledger.close()
    for note in found.notes:
        click.echo(f"certwarden: revocation: {note}", err=True)
    return found.index


def run_assessment(db_url: str, policy: Policy, trust_spec: str | None = None,
                   ) -> Assessment:
    from certwarden.assess import assess, load_trust

    trust = load_trust(policy, spec=trust_spec, own=own_ca_anchors(db_url))
    sightings, _, owners = read_inventory(db_url)
    # Only what present locations hold now: a certificate no longer at any location (replaced,
    # or its location gone) is history (`inventory list --all`), and a finding about it
    # could name no location (issue 11: "location": null).
    present = list({s.certificate.sha256: s.certificate for s in sightings}.values())
    revocations = revocations_for(db_url, policy, sightings, present)
    return assess(sightings, policy=with_owners(policy, owners), trust=trust,
                  revocations=revocations)


def with_owners(policy: Policy, owners: dict[str, tuple[str, str | None]]) -> Policy:
    """The policy's owner rules first (first match wins), then the inventory's records."""
    import dataclasses
    import glob

    from certwarden.assess import Owner

    extra = tuple(Owner(match=glob.escape(uri), team=team, contact=contact)
                  for uri, (team, contact) in sorted(owners.items()))
    return dataclasses.replace(policy, owners=policy.owners + extra) if extra else policy


def emit(text: str, out: str | None) -> None:
    if out and out != "-":
        write_text(out, text)
        click.echo(f"certwarden: wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


def _formats() -> list[str]:
    from certwarden.report import ReportFormat

    return [f.value for f in ReportFormat]


@click.command("report")
@click.option("--format", "fmt", type=VocabularyChoice(_formats),
              default="table", show_default=True, help="Output format.")
@click.option("--out", default=None, metavar="FILE", help="Write here instead of stdout.")
@click.option("--fail-on", type=click.Choice(_SEVERITIES), default=None,
              help="Exit 1 when a finding at or above this severity exists (a CI gate).")
@click.option("--policy", "policy_path", default=None, metavar="FILE",
              help="Policy YAML (default: the built-in policy; see --show-policy).")
@click.option("--years", default=None, help=_YEARS_HELP)
@click.option("--show-policy", is_flag=True, help="Print the built-in default policy and exit.")
@trust_option
@click.pass_context
def report_cmd(ctx: click.Context, fmt: str, out: str | None, fail_on: str | None,
               policy_path: str | None, years: str | None, show_policy: bool,
               trust: str | None) -> None:
    """Assess the inventory against the policy and report the findings."""
    from certwarden.assess import DEFAULT_POLICY_YAML
    from certwarden.assess.forecast import forecast
    from certwarden.report import ReportFormat, render

    if show_policy:
        click.echo(DEFAULT_POLICY_YAML, nl=False)
        return
    span = years_from(years)
    result = run_assessment(ctx.obj["db_url"], policy_from(policy_path), trust)
    emit(render(result, ReportFormat(fmt), forecast(result.certificates, span)), out)
    for err in result.errors:
        click.echo(f"certwarden: not assessed: {err}", err=True)
    if fail_on and result.at_or_above(Severity(fail_on)):
        raise Findings


@click.command("forecast")
@click.option("--years", default=None, help=_YEARS_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.pass_context
def forecast_cmd(ctx: click.Context, years: str | None, as_json: bool) -> None:
    """Per year: certificates over the CA/B ceiling then in force, and renewals needed."""
    from certwarden.assess.forecast import forecast
    from certwarden.report.text import forecast_table

    span = years_from(years)
    _, certificates, _ = read_inventory(ctx.obj["db_url"])
    rows = [y.as_dict() for y in forecast(certificates, span)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(forecast_table(rows), nl=False)


COMMANDS = (report_cmd, forecast_cmd)
