"""The ``certwarden`` command. This package is the only importer of click and rich.

One module per verb (``cli/inspect.py``, ``cli/create.py`` ...), registered in ``COMMAND_MODULES``.

Errors become output in ONE place (``main``): a ``CertwardenError`` or a click usage error is
one line on stderr and exit code 2; findings at or above ``--fail-on`` are exit code 1.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from certwarden import __version__
from certwarden.errors import CertwardenError, UsageError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3


class Findings(Exception):  # noqa: N818 - a signal, not an error: findings at or above --fail-on
    """Raised by a command to make ``main`` exit 1 after output is written."""


class ActionFailed(Exception):  # noqa: N818 - a signal: an action ran and failed (rolled back)
    """Raised by a command after its output: ``main`` prints the one line and exits 3."""


def fail(message: str) -> NoReturn:
    raise UsageError(message)


class FiniteFloatRange(click.FloatRange):
    """A ``FloatRange`` that also refuses ``nan`` (which compares false to both bounds)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def emit_json(obj: Any, out: str | None = None) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    if out and out != "-":
        write_text(out, text)
    else:
        click.echo(text, nl=False)


def write_text(path: str, text: str, *, mode: int = 0o644) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        if not mode & 0o077:
            # A secret: an existing file keeps its old (maybe wider) mode through O_TRUNC.
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        fail(f"{path}: {exc.strerror or 'cannot write'}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="certwarden")
@click.option("--db", "db_url", envvar="CERTWARDEN_DATABASE_URL", default=None,
              help="Inventory database URL (sqlite:///path or postgresql+psycopg://...).")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None) -> None:
    """Find, assess and replace self-signed and unmanaged TLS certificates."""
    ctx.ensure_object(dict)
    ctx.obj["db_url"] = db_url


# An explicit registry: each verb's module lists its commands in ``COMMANDS``; no import magic.
COMMAND_MODULES = (
    "certwarden.cli.inspect",
    "certwarden.cli.report",
    "certwarden.cli.demo",
    "certwarden.cli.create",
    "certwarden.cli.traffic",
    "certwarden.cli.ca",
    "certwarden.cli.serve",
    "certwarden.cli.scan",
    "certwarden.cli.discover",
    "certwarden.cli.inventory",
    "certwarden.cli.lifecycle",
    "certwarden.cli.managed",
    "certwarden.cli.acme",
)


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).COMMANDS:
            cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (tests call this directly)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="certwarden", standalone_mode=False)
    except Findings:
        return EXIT_FINDINGS
    except ActionFailed as exc:
        click.echo(f"certwarden: {' '.join(str(exc).split())}", err=True)
        return EXIT_FAILED
    except CertwardenError as exc:
        click.echo(f"certwarden: error: {exc}", err=True)
        return EXIT_USAGE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("certwarden: aborted", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"certwarden: error: {' '.join(exc.format_message().split())}", err=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        click.echo("certwarden: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except SystemExit:
        # click turns EPIPE on stdout (``certwarden ... | head``) into sys.exit(1), which would
        # read as "findings"; a reader that stopped early is not an error.
        # click marks that case by wrapping stdout (the class name is private, and renamed
        # between click releases, hence the name test).
        if type(sys.stdout).__name__.endswith("PacifyFlushWrapper"):
            return EXIT_OK
        raise
    return EXIT_OK


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
