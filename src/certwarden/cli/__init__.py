"""The ``certwarden`` command. This package is the only importer of click and rich.

One module per verb (``cli/inspect.py``, ``cli/create.py`` ...), each listing its commands in
``COMMANDS``, registered below in ``COMMAND_MODULES`` -- imported modules, no import by name.
What the verbs share (the error mapping, ``--db``, option types, output) is ``cli/common.py``.

Registering is cheap: a verb module imports click and light vocabularies at its top, and the
rest (the store and SQLAlchemy, the web app, the CA, rich ...) inside the command that uses it,
so ``certwarden --help`` or ``certwarden inspect FILE`` do not pay for ``serve`` or ``scan``.

Errors become output in ONE place (``common.run``): a ``CertwardenError`` or a click usage
error is one line on stderr and exit code 2; findings at or above ``--fail-on`` are exit code 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from certwarden import __version__
from certwarden.cli import (
    acme,
    ca,
    create,
    demo,
    discover,
    inspect,
    inventory,
    lifecycle,
    managed,
    report,
    scan,
    serve,
    traffic,
)
from certwarden.cli.common import db_option, run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="certwarden")
@db_option
@click.pass_context
def cli(ctx: click.Context, db_url: str | None) -> None:
    """Find, assess and replace self-signed and unmanaged TLS certificates."""
    from certwarden.settings import Settings

    ctx.ensure_object(dict)
    # The one settings object, built here from the options and the environment; verbs read
    # it (and the database URL it resolved) from ctx.obj and pass values down.
    settings = Settings.from_env(os.environ, database=db_url)
    ctx.obj["settings"] = settings
    ctx.obj["db_url"] = settings.database_url


# An explicit registry: each verb's module lists its commands in ``COMMANDS``; no import magic.
COMMAND_MODULES = (inspect, report, demo, create, traffic, ca, serve, scan, discover, inventory,
                   lifecycle, managed, acme)

for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (tests call this directly)."""
    return run(cli, sys.argv[1:] if argv is None else argv)
