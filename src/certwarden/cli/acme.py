"""``certwarden acme``: operator chores for the ACME server (the server itself runs under
``certwarden serve``). Today: External Account Binding keys for directories that need them.
"""

from __future__ import annotations

import click

from certwarden.cli.common import emit_json, fail


@click.group("acme")
def acme_group() -> None:
    """ACME server administration."""


@acme_group.command("eab-add")
@click.option("--kid", default=None, help="Key identifier to hand out (default: random).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def eab_add(ctx: click.Context, kid: str | None, as_json: bool) -> None:
    """Create an External Account Binding key; shows the HMAC key once."""
    import secrets

    from certwarden.acme.jws import b64e
    from certwarden.store.acme_repo import AcmeRepo

    if kid is not None and (not kid or len(kid) > 200 or not kid.isprintable() or " " in kid):
        fail(f"--kid must be 1-200 printable characters without spaces, got {kid!r}")
    repo = AcmeRepo.open(ctx.obj["db_url"])
    try:
        kid = kid or secrets.token_urlsafe(9)
        if repo.eab_key(kid) is not None:
            fail(f"external account key {kid!r} already exists")
        key = secrets.token_bytes(32)
        repo.add_eab_key(kid, key)
    finally:
        repo.close()
    if as_json:
        emit_json({"kid": kid, "hmac_key": b64e(key), "alg": "HS256"})
    else:
        click.echo(f"kid:      {kid}\nhmac key: {b64e(key)}  (HS256; shown once)")


COMMANDS = (acme_group,)
