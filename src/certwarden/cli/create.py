"""``certwarden create``: self-signed certificates, a development CA and its leaves, CSRs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from certwarden.cli.common import VocabularyChoice

if TYPE_CHECKING:
    from certwarden.x509 import create as mk

# ``x509.create`` (and with it cryptography) is imported when a command runs; these defaults
# are its own (tests/unit/test_cli_registry.py holds them equal).
DEV_VALIDITY_DAYS = 90  # x509.create.DEV_VALIDITY_DAYS
DEV_CA_VALIDITY_DAYS = 10 * 365  # x509.create.DEV_CA_VALIDITY_DAYS


def _key_algorithms() -> list[str]:
    from certwarden.x509.keys import KeyAlgorithm

    return [a.value for a in KeyAlgorithm]


_algorithms = VocabularyChoice(_key_algorithms)
passphrase_option = click.option(
    "--passphrase", envvar="CERTWARDEN_KEY_PASSPHRASE", default=None,
    help="Encrypt the private key with this passphrase (or env CERTWARDEN_KEY_PASSPHRASE).")


def _stem(out: str | None, names: tuple[str, ...]) -> Path:
    base = out or names[0].replace("*", "_wildcard")
    return Path(base)


def _write_pair(issued: mk.CertifiedKey, stem: Path, passphrase: str | None,
                chain: tuple[str, ...] = ()) -> None:
    from certwarden.x509 import create as mk

    cert_path, key_path = stem.with_name(stem.name + ".pem"), stem.with_name(stem.name + "-key.pem")
    mk.write_public(cert_path, (issued.certificate.pem() + "".join(chain)).encode())
    mk.write_private(key_path, issued.key_pem(passphrase.encode() if passphrase else None))
    click.echo(f"certificate: {cert_path}\nprivate key: {key_path} (mode 0600)")
    click.echo(f"sha256: {issued.certificate.sha256}")


@click.group("create")
def create() -> None:
    """Make a self-signed certificate, a development CA and leaves, or a CSR (safe defaults)."""


@create.command("self-signed")
@click.argument("names", nargs=-1, required=True)
@click.option("--days", default=DEV_VALIDITY_DAYS, show_default=True)
@click.option("--key", "algorithm", type=_algorithms, default="ec-p256", show_default=True)
@click.option("--out", default=None, help="Path stem: writes STEM.pem and STEM-key.pem.")
@passphrase_option
def self_signed(names: tuple[str, ...], days: int, algorithm: str, out: str | None,
                passphrase: str | None) -> None:
    """A self-signed certificate for NAMES (DNS names or IPs)."""
    from certwarden.x509 import create as mk
    from certwarden.x509 import keys

    issued = mk.self_signed(names, days=days, algorithm=keys.KeyAlgorithm(algorithm))
    _write_pair(issued, _stem(out, names), passphrase)


@create.command("ca")
@click.option("--dir", "directory", default="certwarden-dev-ca", show_default=True)
@click.option("--name", "common_name", default="certwarden development CA", show_default=True)
@click.option("--days", default=DEV_CA_VALIDITY_DAYS, show_default=True)
@click.option("--key", "algorithm", type=_algorithms, default="ec-p256", show_default=True)
@passphrase_option
def ca(directory: str, common_name: str, days: int, algorithm: str,
       passphrase: str | None) -> None:
    """A local development CA (ca.pem, ca-key.pem) in DIR."""
    from certwarden.x509 import create as mk
    from certwarden.x509 import keys

    if os.path.exists(os.path.join(directory, "ca-key.pem")):
        raise click.UsageError(f"{directory} already holds a CA key; not overwriting it")
    issued = mk.dev_ca(common_name, days=days, algorithm=keys.KeyAlgorithm(algorithm))
    mk.save_dev_ca(issued, directory, passphrase.encode() if passphrase else None)
    click.echo(f"development CA: {directory}/ca.pem (key {directory}/ca-key.pem, mode 0600)")


@create.command("leaf")
@click.argument("names", nargs=-1, required=True)
@click.option("--ca", "ca_dir", required=True, help="Directory of `certwarden create ca`.")
@click.option("--days", default=DEV_VALIDITY_DAYS, show_default=True)
@click.option("--key", "algorithm", type=_algorithms, default="ec-p256", show_default=True)
@click.option("--client", is_flag=True, help="Also allow TLS client authentication.")
@click.option("--out", default=None, help="Path stem: writes STEM.pem and STEM-key.pem.")
@click.option("--ca-passphrase", envvar="CERTWARDEN_CA_KEY_PASSPHRASE", default=None)
@passphrase_option
def leaf(names: tuple[str, ...], ca_dir: str, days: int, algorithm: str, client: bool,
         out: str | None, ca_passphrase: str | None, passphrase: str | None) -> None:
    """A leaf for NAMES signed by the development CA in --ca."""
    from certwarden.x509 import create as mk
    from certwarden.x509 import keys

    authority = mk.load_dev_ca(ca_dir, ca_passphrase.encode() if ca_passphrase else None)
    issued = mk.leaf(authority, names, days=days, algorithm=keys.KeyAlgorithm(algorithm),
                     client=client)
    _write_pair(issued, _stem(out, names), passphrase)


@create.command("csr")
@click.argument("names", nargs=-1, required=True)
@click.option("--key", "algorithm", type=_algorithms, default="ec-p256", show_default=True)
@click.option("--out", default=None, help="Path stem: writes STEM.csr and STEM-key.pem.")
@passphrase_option
def csr(names: tuple[str, ...], algorithm: str, out: str | None, passphrase: str | None) -> None:
    """A CSR for NAMES and its new private key."""
    from certwarden.x509 import create as mk
    from certwarden.x509 import keys

    pem, key = mk.csr(names, algorithm=keys.KeyAlgorithm(algorithm))
    stem = _stem(out, names)
    csr_path, key_path = stem.with_name(stem.name + ".csr"), stem.with_name(stem.name + "-key.pem")
    mk.write_public(csr_path, pem)
    mk.write_private(key_path, keys.key_pem(key, passphrase.encode() if passphrase else None))
    click.echo(f"csr: {csr_path}\nprivate key: {key_path} (mode 0600)")


COMMANDS = (create,)
