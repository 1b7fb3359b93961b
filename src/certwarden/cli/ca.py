"""``certwarden ca init|root|issue|revoke|list|crl``: the private CA."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from certwarden.cli.common import FiniteFloatRange, fail, write_text
from certwarden.errors import ParseError, UsageError
from certwarden.settings import CA_PASSPHRASE, Settings

if TYPE_CHECKING:
    from certwarden.store.ca_ledger import SqlLedger

PASSPHRASE_ENV = CA_PASSPHRASE
# The RFC 5280 CRLReason names, ``ca.model.RevocationReason``'s values, for ``revoke --help``
# without importing the CA (tests/unit/test_cli_registry.py holds them equal).
REVOCATION_REASONS = ("unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
                      "superseded", "cessationOfOperation", "privilegeWithdrawn", "aACompromise")


def settings_of(ctx: click.Context) -> Settings:
    """The process's settings, built by the root command (or from the environment when a
    command runs without it)."""
    found = (ctx.find_root().obj or {}).get("settings")
    return found if isinstance(found, Settings) else Settings.from_env(os.environ)


def passphrase_source(passphrase_file: str | None, *, confirm: bool = False,
                      ) -> Callable[[], bytes]:
    """The file given, then env, then an interactive prompt — asked once, when a key is opened."""
    @functools.cache
    def get() -> bytes:
        from certwarden.x509.parse import read_limited

        if passphrase_file:  # named on the command line: it wins over the environment
            try:
                # Bytes, not text: a passphrase need not be UTF-8, and a decode error is no
                # reason for a traceback.
                data = read_limited(passphrase_file, 64 * 1024,
                                    what="a passphrase file").rstrip(b"\r\n")
            except ParseError as exc:
                fail(f"{passphrase_file}: {exc.reason}")
            if not data:
                fail(f"{passphrase_file}: empty passphrase")
            return data
        env = os.environ.get(PASSPHRASE_ENV)
        if env:
            return env.encode()
        if not sys.stdin.isatty():
            fail(f"CA passphrase needed: set {PASSPHRASE_ENV} or use --passphrase-file")
        value = click.prompt("CA key passphrase", hide_input=True,
                             confirmation_prompt=confirm, err=True)
        return str(value).encode()

    return get


passphrase_option = click.option("--passphrase-file", default=None, metavar="FILE",
                                 help=f"Read the CA key passphrase from FILE "
                                      f"(else env {PASSPHRASE_ENV}, else a prompt).")
ca_option = click.option("--ca", "ca_name", default=None, metavar="NAME",
                         help="Which CA (default: the newest one).")
pin_option = click.option("--pin", envvar="CERTWARDEN_PKCS11_PIN", default=None,
                          help="PKCS#11 user PIN (or env CERTWARDEN_PKCS11_PIN).")


def _ledger(ctx: click.Context) -> SqlLedger:
    from certwarden.store.ca_ledger import SqlLedger

    ledger = SqlLedger.open(settings_of(ctx).database_url)
    ctx.call_on_close(ledger.close)  # PostgreSQL: no connection left to the garbage collector
    return ledger


def _actor() -> str:
    try:
        return f"cli:{os.getlogin()}"
    except OSError:
        return f"cli:uid{os.getuid()}"


@click.group("ca")
def ca_group() -> None:
    """The private CA: a root, an issuing intermediate, short-lived leaves, CRL and OCSP."""


@ca_group.command("init")
@click.option("--name", required=True, help='CA name, e.g. "Example Private CA".')
@click.option("--key-algorithm", default="ec-p256", show_default=True,
              help="ec-p256, ec-p384, rsa-3072, rsa-4096 or ed25519.")
@click.option("--root-key-algorithm", default=None, help="Root key algorithm (default: same).")
@click.option("--key", "pkcs11_uri", default=None, metavar="pkcs11:URI",
              help="Generate the intermediate's key in this PKCS#11 token instead of a file.")
@click.option("--key-dir", default=None, metavar="DIR",
              help="Where encrypted key files go (default: DATA_DIR/ca or env CERTWARDEN_CA_DIR).")
@click.option("--base-url", default="http://127.0.0.1:8080", show_default=True,
              help="Where 'certwarden serve' is reachable: leaves point OCSP and CRL here.")
@click.option("--permit-dns", multiple=True, metavar="SUFFIX",
              help="Name constraint on the intermediate (and policy allow list).")
@click.option("--allow-dns", multiple=True, metavar="SUFFIX", help="Policy: allowed DNS suffix.")
@click.option("--deny-dns", multiple=True, metavar="SUFFIX", help="Policy: denied DNS suffix.")
@click.option("--allow-ip", multiple=True, metavar="CIDR", help="Policy: allowed IP range.")
@click.option("--spiffe-trust-domain", multiple=True, metavar="DOMAIN",
              help="Policy: allowed SPIFFE trust domain.")
@click.option("--config", "config_file", default=None, metavar="FILE",
              help="YAML with base_url, policy and custom profiles.")
@passphrase_option
@pin_option
@click.pass_context
def init_cmd(ctx: click.Context, name: str, key_algorithm: str, root_key_algorithm: str | None,
             pkcs11_uri: str | None, key_dir: str | None, base_url: str,
             permit_dns: tuple[str, ...], allow_dns: tuple[str, ...], deny_dns: tuple[str, ...],
             allow_ip: tuple[str, ...], spiffe_trust_domain: tuple[str, ...],
             config_file: str | None, passphrase_file: str | None, pin: str | None) -> None:
    """Create a root and an issuing intermediate beside the inventory."""
    from certwarden.ca.hierarchy import init_ca
    from certwarden.ca.policy import CaConfig
    from certwarden.x509.keys import CA_KEY_ALGORITHMS, KeyAlgorithm

    raw: dict[str, Any] = _load_yaml(config_file) if config_file else {}
    raw.setdefault("base_url", base_url)
    if not isinstance(raw.get("policy") or {}, dict):
        fail(f"{config_file}: policy must be a mapping")
    policy = dict(raw.get("policy") or {})
    for key in ("allowed_dns", "denied_dns", "allowed_ip", "spiffe_trust_domains"):
        if not isinstance(policy.get(key, []), list):
            fail(f"{config_file}: policy: {key} must be a list")
    policy["allowed_dns"] = [*policy.get("allowed_dns", ()), *allow_dns, *permit_dns]
    policy["denied_dns"] = [*policy.get("denied_dns", ()), *deny_dns]
    policy["allowed_ip"] = [*policy.get("allowed_ip", ()), *allow_ip]
    policy["spiffe_trust_domains"] = [*policy.get("spiffe_trust_domains", ()),
                                      *spiffe_trust_domain]
    raw["policy"] = policy
    config = CaConfig.from_mapping(raw)
    algorithm = KeyAlgorithm.parse(key_algorithm, among=CA_KEY_ALGORITHMS)
    root_alg = (KeyAlgorithm.parse(root_key_algorithm, among=CA_KEY_ALGORITHMS)
                if root_key_algorithm else None)
    ledger = _ledger(ctx)
    passphrase = passphrase_source(passphrase_file, confirm=True)()
    result = init_ca(ledger, name=name, key_dir=Path(key_dir) if key_dir else
                     settings_of(ctx).ca_dir,
                     passphrase=passphrase, algorithm=algorithm, root_algorithm=root_alg,
                     pkcs11_uri=pkcs11_uri, pin=pin,
                     pkcs11_module=settings_of(ctx).pkcs11_module, config=config,
                     permitted_dns=permit_dns,
                     actor=_actor())
    click.echo(f"root:         {result.root.name}  ({result.root.key_ref})")
    click.echo(f"intermediate: {result.intermediate.name}  ({result.intermediate.key_ref})")
    click.echo("the root key is needed only to sign intermediates and root CRLs: "
               "it can be moved offline now")


def _load_yaml(path: str) -> dict[str, Any]:
    import yaml

    from certwarden.x509.parse import read_limited

    try:
        data = yaml.safe_load(read_limited(path, 1024 * 1024, what="a CA configuration")
                              .decode("utf-8"))
    except ParseError as exc:
        fail(f"{path}: {exc.reason}")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text")
    except RecursionError:
        fail(f"{path}: nested too deeply to be a CA configuration")
    except yaml.YAMLError as exc:
        fail(f"{path}: not valid YAML ({' '.join(str(exc).split())[:120]})")
    if not isinstance(data, dict):
        fail(f"{path}: expected a mapping at the top level")
    return data


@ca_group.command("root")
@click.option("--out", default="-", show_default=True, help="Where to write the root (PEM).")
@click.option("--intermediate-out", default=None, metavar="FILE",
              help="Also write the issuing intermediate (PEM): the -issuer of openssl ocsp.")
@click.option("--chain-out", default=None, metavar="FILE",
              help="Also write the chain above a leaf: intermediate, then root (PEM).")
@ca_option
@click.pass_context
def root_cmd(ctx: click.Context, out: str, intermediate_out: str | None,
             chain_out: str | None, ca_name: str | None) -> None:
    """Write the trust anchor to distribute (and, on request, the intermediate and chain)."""
    from certwarden.ca.authority import pick_issuer

    ledger = _ledger(ctx)
    inter = pick_issuer(ledger, ca_name)
    root = ledger.issuer(inter.parent) if inter.parent else inter
    if root is None:
        fail(f"CA {inter.name} has no recorded root")
    if "-" in (intermediate_out, chain_out):
        fail("--intermediate-out and --chain-out take a file name, not -")
    if intermediate_out:
        write_text(intermediate_out, inter.pem)
    if chain_out:
        write_text(chain_out, inter.pem + (root.pem if root is not inter else ""))
    _write(out, root.pem)


def _write(out: str, text: str) -> None:
    if out == "-":
        click.echo(text, nl=False)
    else:
        write_text(out, text)


@ca_group.command("issue")
@click.argument("csr", required=False)
@click.option("--name", "names", multiple=True, metavar="NAME",
              help="DNS name, IP or URI (repeatable). Without CSR: a key is generated too.")
@click.option("--profile", default="tls-server", show_default=True,
              help="tls-server, tls-client, spiffe or a custom profile.")
@click.option("--out", default="-", show_default=True, help="Certificate chain, leaf first.")
@click.option("--key-out", default=None, help="Where the generated key goes (no-CSR mode).")
@click.option("--lifetime-days", type=FiniteFloatRange(0, 3650, min_open=True), default=None,
              help="Shorter than the profile's.")
@ca_option
@passphrase_option
@pin_option
@click.pass_context
def issue_cmd(ctx: click.Context, csr: str | None, names: tuple[str, ...], profile: str,
              out: str, key_out: str | None, lifetime_days: float | None, ca_name: str | None,
              passphrase_file: str | None, pin: str | None) -> None:
    """Issue a certificate for CSR (PEM/DER file, - for stdin) or for --name ..."""
    from certwarden.ca import Authority

    if not csr and not names:
        fail("give a CSR file or at least one --name")
    lifetime = dt.timedelta(days=lifetime_days) if lifetime_days is not None else None
    authority = Authority.open(_ledger(ctx), issuer=ca_name,
                               passphrase=passphrase_source(passphrase_file), pin=pin)
    key_target = None
    if not csr:  # decided before issuing: a certificate whose key is lost is worse than none
        key_target = key_out or (f"{out.removesuffix('.pem')}.key" if out != "-" else None)
        if key_target is None:
            fail("--key-out is required when the certificate goes to stdout")
    new_key_pem = None
    if csr:
        data = _read_input(csr)
        chain = authority.issue(data, profile=profile, names=list(names) or None,
                                requested_by=_actor(), lifetime=lifetime)
    else:
        from certwarden.x509.keys import KeyAlgorithm, generate_private_key, key_pem

        key = generate_private_key(KeyAlgorithm.EC_P256)
        chain = authority.issue(public_key=key.public_key(),
                                profile=profile, names=list(names), requested_by=_actor(),
                                lifetime=lifetime)
        new_key_pem = key_pem(key).decode()
    if new_key_pem is not None and key_target is not None:
        write_text(key_target, new_key_pem, mode=0o600)  # the key first: it exists nowhere else
    _write(out, chain.pem())
    click.echo(f"issued serial {chain.serial} ({chain.record.profile}, "
               f"until {chain.record.not_after:%Y-%m-%d %H:%M}Z)", err=True)


MAX_CSR_BYTES = 1024 * 1024  # a CSR with hundreds of names is tens of KiB


def _read_input(path: str) -> bytes:
    from certwarden.x509.parse import read_limited

    if path == "-":
        data = sys.stdin.buffer.read(MAX_CSR_BYTES + 1)
        if len(data) > MAX_CSR_BYTES:
            fail("<stdin>: larger than 1 MiB; not a CSR")
        return data
    return read_limited(path, MAX_CSR_BYTES, what="a CSR")


@ca_group.command("revoke")
@click.argument("target", metavar="SERIAL|CERT")
@click.option("--reason", default="unspecified", show_default=True,
              help=", ".join(REVOCATION_REASONS))
@ca_option
@click.pass_context
def revoke_cmd(ctx: click.Context, target: str, reason: str, ca_name: str | None) -> None:
    """Revoke by serial (hex) or by certificate file. Needs no key."""
    from certwarden.ca import RevocationReason
    from certwarden.ca.authority import revoke_serial

    why = RevocationReason.parse(reason)
    rev = revoke_serial(_ledger(ctx), _serial_of(target), why, requested_by=_actor(),
                        issuer=ca_name)
    click.echo(f"revoked {rev.serial} ({rev.reason.value}) at {rev.revoked_at:%Y-%m-%d %H:%M:%S}Z")


def _serial_of(target: str) -> str:
    from certwarden.ca.model import parse_serial, serial_hex

    if os.path.exists(target):
        from cryptography import x509

        data = Path(target).read_bytes()
        try:
            cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                    else x509.load_der_x509_certificate(data))
        except ValueError:
            raise UsageError(f"{target}: not a certificate") from None
        return serial_hex(cert.serial_number)
    return serial_hex(parse_serial(target))


@ca_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.option("--audit", is_flag=True, help="Show the audit log instead.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1_000_000))
@ca_option
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool, audit: bool, limit: int,
             ca_name: str | None) -> None:
    """Issued certificates (newest first) with their status, or the audit log."""
    from certwarden.ca.authority import pick_issuer

    ledger = _ledger(ctx)
    if ca_name:
        pick_issuer(ledger, ca_name)  # an unknown --ca is an error here as everywhere else
    if audit:
        for e in ledger.audit_events(limit=limit):
            row = {"at": e.at.isoformat(), "actor": e.actor, "action": e.action.value,
                   "issuer": e.issuer, "serial": e.serial, "detail": e.detail}
            click.echo(json.dumps(row) if as_json else
                       f"{e.at:%Y-%m-%dT%H:%M:%S}  {e.action.value:7} {e.actor:16} "
                       f"{e.serial or '-':32}  {e.detail}")
        return
    if not as_json:
        for i in ledger.issuers():
            click.echo(f"# {i.role.value:12} {i.name}  {i.certificate.subject.rfc4514_string()}")
    for issued, rev in ledger.list_issued(issuer=ca_name, limit=limit):
        status = f"revoked:{rev.reason.value}" if rev else (
            "expired" if issued.not_after < dt.datetime.now(dt.UTC) else "good")
        if as_json:
            click.echo(json.dumps({"serial": issued.serial, "issuer": issued.issuer,
                                   "profile": issued.profile, "names": list(issued.names),
                                   "not_after": issued.not_after.isoformat(),
                                   "status": status, "requested_by": issued.requested_by}))
        else:
            click.echo(f"{issued.serial}  {status:22} {issued.profile:10} "
                       f"{issued.not_after:%Y-%m-%d}  {','.join(issued.names)}")


@ca_group.command("crl")
@click.option("--out", default="-", show_default=True, help="Where to write the CRL.")
@click.option("--pem", is_flag=True, help="PEM instead of DER.")
@ca_option
@passphrase_option
@pin_option
@click.pass_context
def crl_cmd(ctx: click.Context, out: str, pem: bool, ca_name: str | None,
            passphrase_file: str | None, pin: str | None) -> None:
    """Sign and publish a new CRL (the next CRL number) for the issuing CA."""
    from certwarden.ca import Authority

    authority = Authority.open(_ledger(ctx), issuer=ca_name,
                               passphrase=passphrase_source(passphrase_file), pin=pin)
    rec = authority.crl(requested_by=_actor())
    data = rec.der
    if pem:
        import base64

        b64 = base64.encodebytes(data).decode().replace("\n", "")
        data = ("-----BEGIN X509 CRL-----\n"
                + "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
                + "\n-----END X509 CRL-----\n").encode()
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            Path(out).write_bytes(data)
        except OSError as exc:
            fail(f"{out}: {exc.strerror or 'cannot write'}")
    click.echo(f"CRL number {rec.number} of {rec.issuer}, next update "
               f"{rec.next_update:%Y-%m-%d %H:%M}Z", err=True)


COMMANDS = (ca_group,)
