"""What every verb shares: the error mapping, the ``--db`` option, option types, output.

Verb modules import from here, never from ``certwarden.cli`` (the package imports the verbs,
so that would be a circle). This module imports click and the standard library only: it is
loaded for every command, ``--help`` included.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import click

from certwarden.errors import CertwardenError, UsageError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3


class Findings(Exception):  # noqa: N818 - a signal, not an error: findings at or above --fail-on
    """Raised by a command to make ``main`` exit 1 after output is written."""


def fail(message: str) -> NoReturn:
    raise UsageError(message)


db_option = click.option(
    "--db", "db_url", envvar="CERTWARDEN_DATABASE_URL", default=None,
    help="Inventory database URL (sqlite:///path or postgresql+psycopg://...).")


class ActionFailed(Exception):  # noqa: N818 - a signal: an action ran and failed (rolled back)
    """Raised by a command after its output: ``run`` prints the one line and exits 3."""


def run(command: click.Command, args: Sequence[str]) -> int:
    """Run ``command`` and map what it raises to an exit code -- the one place that does.

    A ``CertwardenError`` or a click usage error is one line on stderr and exit code 2;
    ``Findings`` (at or above ``--fail-on``) is exit code 1; ``ActionFailed`` (a deploy or
    renewal that ran, failed and was rolled back) is exit code 3; never a traceback.
    """
    try:
        command.main(args=list(args), prog_name="certwarden", standalone_mode=False)
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


class FiniteFloatRange(click.FloatRange):
    """A ``FloatRange`` that also refuses ``nan`` (which compares false to both bounds)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class VocabularyChoice(click.Choice[str]):
    """A ``Choice`` of a vocabulary's values, read from its home the first time they are needed.

    Options are built when a verb's module is imported, that is for every command and for
    ``--help``; the package that owns a vocabulary (the store, the report writers) need not be
    imported until this option's help is shown or its value checked. The values still come
    from the one place that defines them.
    """

    def __init__(self, values: Callable[[], Iterable[str]], *,
                 case_sensitive: bool = True) -> None:
        self._values = values
        self._resolved: tuple[str, ...] | None = None
        super().__init__((), case_sensitive=case_sensitive)

    @property  # click stores a tuple; here it is read on demand
    def choices(self) -> tuple[str, ...]:
        if self._resolved is None:
            self._resolved = tuple(self._values())
        return self._resolved

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        # click's __init__ assigns the (empty) tuple given above; a real one replaces the source.
        if value:
            self._resolved = tuple(value)


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


# ``--trust`` for every command that verifies chains (inspect, scan, report): one option,
# one meaning. The value goes to ``TrustStore.load`` (via ``assess.load_trust``).
TRUST_METAVAR = "FILE|DIR|system|certifi"
trust_option = click.option(
    "--trust", "trust", default=None, metavar=TRUST_METAVAR,
    help="Verify chains against this trust store: a PEM/DER file or directory, the system "
         "bundle or certifi (default: the policy's, system). The roots of certwarden's own CA "
         "are trusted as well.")
