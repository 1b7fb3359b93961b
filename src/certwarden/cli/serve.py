"""``certwarden serve``: OCSP and CRL (and whatever routers are mounted) on uvicorn.

Binds 127.0.0.1 by default. ``--https`` serves with a certificate our own CA issues at start
(tls-server profile, for the bind host), its key kept in a 0600 temporary directory.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from certwarden.cli.ca import passphrase_option, passphrase_source, pin_option, settings_of
from certwarden.cli.common import fail, write_text
from certwarden.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from certwarden.acme.context import AcmeSettings
    from certwarden.ca import Authority
    from certwarden.store.ca_ledger import SqlLedger

DEFAULT_HTTP = "127.0.0.1:8080"


def split_bind(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def check_bind(host: str, port: int) -> None:
    """Bind and release ``host:port`` now, so a port in use or an address not ours is one
    line and exit 2 before anything starts (uvicorn would log it and exit 3)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind(addr)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _https_files(authority: Authority, host: str, workdir: Path) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization

    from certwarden.x509.keys import KeyAlgorithm, generate_private_key

    key = generate_private_key(KeyAlgorithm.EC_P256)
    try:
        ipaddress.ip_address(host)
        names = [host, "localhost"]
    except ValueError:
        names = [host]
    chain = authority.issue(public_key=key.public_key(),
                            profile="tls-server", names=names, requested_by="serve")
    cert_path, key_path = workdir / "serve.pem", workdir / "serve.key"
    write_text(str(cert_path), chain.pem())
    write_text(str(key_path), key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()).decode(),
               mode=0o600)
    return str(cert_path), str(key_path)


@click.command("serve")
@click.option("--http", "http_bind", default=None, metavar="HOST:PORT",
              help=f"Plain HTTP listener (default {DEFAULT_HTTP} when no --https).")
@click.option("--https", "https_bind", default=None, metavar="HOST:PORT",
              help="HTTPS listener with a certificate from our own CA.")
@click.option("--ca", "ca_name", default=None, help="CA for the --https certificate.")
@click.option("--no-warm", is_flag=True, help="Do not pre-sign OCSP answers at start.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (one listener only when more than 1).")
@click.option("--acme-resolver", default=None, metavar="IP[:PORT]",
              help="DNS server the ACME validator asks (default: the system resolver).")
@click.option("--acme-http-port", type=click.IntRange(1, 65535), default=80, show_default=True,
              help="Port the ACME validator fetches http-01 answers from.")
@click.option("--acme-tls-port", type=click.IntRange(1, 65535), default=443, show_default=True,
              help="Port the ACME validator checks tls-alpn-01 on.")
@click.option("--acme-allow", multiple=True, metavar="CIDR",
              help="Addresses the ACME validator may connect to (default: private ranges).")
@click.option("--acme-eab", is_flag=True,
              help="ACME accounts need External Account Binding (keys: certwarden acme eab-add).")
@click.option("--no-acme", is_flag=True, help="Do not serve ACME under /acme.")
@passphrase_option
@pin_option
@click.pass_context
def serve_cmd(ctx: click.Context, http_bind: str | None, https_bind: str | None,
              ca_name: str | None, no_warm: bool, workers: int, acme_resolver: str | None,
              acme_http_port: int, acme_tls_port: int, acme_allow: tuple[str, ...],
              acme_eab: bool, no_acme: bool, passphrase_file: str | None,
              pin: str | None) -> None:
    """Serve OCSP (/ocsp), CRLs (/crl/<issuer>.crl) and ACME (/acme/directory)."""
    import asyncio

    import uvicorn

    from certwarden.store.ca_ledger import SqlLedger
    from certwarden.web.app import create_app

    if not http_bind and not https_bind:
        http_bind = DEFAULT_HTTP
    for bind in (http_bind, https_bind):
        if bind:
            split_bind(bind)  # bad input is reported before any key is opened
    # Checked with --no-acme too, as before: a typo is reported, not silently ignored.
    acme = _acme_settings(acme_resolver, acme_http_port, acme_tls_port, acme_allow, acme_eab,
                          workers=workers)
    settings = dataclasses.replace(settings_of(ctx), ca_name=ca_name,
                                   passphrase=passphrase_source(passphrase_file), pkcs11_pin=pin,
                                   warm_ocsp=not no_warm, acme=None if no_acme else acme)
    if workers > 1:
        _serve_workers(settings, SqlLedger.open(settings.database_url), http_bind, https_bind,
                       workers)
        return
    app = create_app(settings)
    for bind in (http_bind, https_bind):
        if bind:  # after the keys open (a wrong passphrase is the likelier mistake), before
            check_bind(*split_bind(bind))  # the --https certificate is issued
    configs: list[Any] = []
    workdir = Path(tempfile.mkdtemp(prefix="certwarden-serve-"))
    if http_bind:
        host, port = split_bind(http_bind)
        configs.append(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                      access_log=False))
    if https_bind:
        host, port = split_bind(https_bind)
        ledger = SqlLedger.open(settings.database_url)
        certfile, keyfile = _https_files(_authority(settings, ledger), host, workdir)
        configs.append(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                      access_log=False, ssl_certfile=certfile,
                                      ssl_keyfile=keyfile))
    for cfg in configs:
        scheme = "https" if cfg.ssl_certfile else "http"
        click.echo(f"serving {scheme}://{cfg.host}:{cfg.port}/ (ocsp, crl"
                   f"{'' if no_acme else ', acme'})", err=True)

    async def run_all() -> None:
        await asyncio.gather(*(uvicorn.Server(cfg).serve() for cfg in configs))

    try:
        asyncio.run(run_all())
    finally:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()


def _authority(settings: Settings, ledger: SqlLedger) -> Authority:
    from certwarden.ca import Authority

    return Authority.open(ledger, issuer=settings.ca_name, passphrase=settings.passphrase,
                          pin=settings.pkcs11_pin)


def _acme_settings(resolver: str | None, http_port: int, tls_port: int, allow: tuple[str, ...],
                   eab: bool, *, workers: int) -> AcmeSettings:
    """ACME validator options, checked now."""
    from certwarden.acme.context import AcmeSettings
    from certwarden.acme.validation import PRIVATE_NETWORKS, ValidatorSettings, parse_hostport

    if resolver:
        try:
            parse_hostport(resolver)
        except ValueError as exc:
            fail(f"--acme-resolver: {exc}")
    for cidr in allow:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            fail(f"--acme-allow: {cidr!r} is not an address or CIDR range")
    validator = ValidatorSettings(resolver=resolver or None, http_port=http_port,
                                  tls_port=tls_port, allow=allow or PRIVATE_NETWORKS)
    # several processes share nonces through the database
    return AcmeSettings(validator=validator, eab_required=eab,
                        nonces="database" if workers > 1 else "memory")


def worker_app() -> FastAPI:
    """The app of each ``serve --workers N`` process (uvicorn imports this by name): the
    settings ``serve`` handed down in the environment, rebuilt once, then ``create_app``."""
    from certwarden.web.app import create_app

    return create_app(Settings.from_env(os.environ))


def _serve_workers(settings: Settings, ledger: SqlLedger, http_bind: str | None,
                   https_bind: str | None, workers: int) -> None:
    """Several processes on one listener: uvicorn spawns them and each builds its own app
    (``worker_app``) from the settings, which travel to them as environment."""
    import uvicorn

    from certwarden.ca.publish import Publisher

    if http_bind and https_bind:
        fail("--workers > 1 serves one listener: give --http or --https, not both")
    settings = dataclasses.replace(settings, database_url=ledger.engine.url.render_as_string(
        hide_password=False))
    # Opened once here so a wrong or missing passphrase fails now, with one line.
    Publisher.open(ledger, passphrase=settings.passphrase, pin=settings.pkcs11_pin)
    try:
        os.environ.update(settings.to_env())
    except ValueError:  # not UTF-8, or a NUL byte, which the environment cannot hold
        fail("--workers > 1 hands the passphrase to workers in the environment: it must be "
             "UTF-8 text without NUL bytes")
    host, port = split_bind(https_bind or http_bind or DEFAULT_HTTP)
    check_bind(host, port)
    ssl: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="certwarden-serve-"))
    try:
        if https_bind:
            certfile, keyfile = _https_files(_authority(settings, ledger), host, workdir)
            ssl = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
        scheme = "https" if https_bind else "http"
        click.echo(f"serving {scheme}://{host}:{port}/ (ocsp, crl) with {workers} workers",
                   err=True)
        uvicorn.run("certwarden.cli.serve:worker_app", factory=True, host=host,
                    port=port, workers=workers, log_level="warning", access_log=False, **ssl)
    finally:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()


COMMANDS = (serve_cmd,)
