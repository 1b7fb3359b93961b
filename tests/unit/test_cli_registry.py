"""The verb registry: imported modules, cheap to load, and its defaults are the library's own.

Registering a verb must not load what only running it needs (issue 16: ``--help`` and
``inspect FILE`` start in well under a second); so a few defaults shown in ``--help`` are
written in the CLI module, and these tests hold them equal to their home.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "src" / "certwarden" / "samples" / "self-signed.pem"

# What running a verb may need, but listing the verbs must not.
HEAVY = ("sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "kubernetes", "rich",
         "yaml", "cryptography", "jinja2", "asyncio", "certwarden.store", "certwarden.web",
         "certwarden.ca", "certwarden.acme", "certwarden.lifecycle", "certwarden.traffic",
         "certwarden.discovery", "certwarden.assess", "certwarden.report", "certwarden.x509")


def _modules_after(argv: list[str]) -> set[str]:
    code = ("import json, sys\n"
            "from certwarden.cli import main\n"
            f"code = main({argv!r})\n"
            "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["code"] == 0, out.stderr
    return set(last["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


def test_help_loads_no_verb_dependencies() -> None:
    modules = _modules_after(["--help"])
    assert _loaded(modules, HEAVY) == []
    assert "click" in modules  # the check is not vacuous: the CLI itself did load


def test_inspect_file_loads_neither_store_nor_servers() -> None:
    modules = _modules_after(["inspect", str(SAMPLE)])
    assert "certwarden.x509" in modules
    assert "certwarden.assess" in modules
    assert _loaded(modules, ("sqlalchemy", "fastapi", "uvicorn", "kubernetes",
                             "certwarden.store", "certwarden.web", "certwarden.ca",
                             "certwarden.acme", "certwarden.traffic")) == []


def test_registry_is_imported_modules_each_with_its_commands() -> None:
    from certwarden.cli import COMMAND_MODULES, cli

    assert all(isinstance(m, types.ModuleType) for m in COMMAND_MODULES)
    registered = [c for m in COMMAND_MODULES for c in m.COMMANDS]
    assert len({c.name for c in registered}) == len(registered)
    assert {c.name: c for c in registered} == cli.commands


def test_defaults_written_in_the_cli_are_the_library_defaults() -> None:
    from certwarden.ca import RevocationReason
    from certwarden.cli import ca, create, lifecycle
    from certwarden.lifecycle import replace, trust
    from certwarden.x509 import create as mk

    assert tuple(r.value for r in RevocationReason) == ca.REVOCATION_REASONS
    assert create.DEV_VALIDITY_DAYS == mk.DEV_VALIDITY_DAYS
    assert create.DEV_CA_VALIDITY_DAYS == mk.DEV_CA_VALIDITY_DAYS
    assert replace.Selection.SELF_SIGNED.value == lifecycle.DEFAULT_SELECTION
    assert lifecycle.DEFAULT_PROFILE == replace.DEFAULT_PROFILE
    assert lifecycle.JAVA_DEFAULT_STOREPASS == trust.JAVA_DEFAULT_STOREPASS


def _choices(path: list[str], option: str) -> tuple[str, ...]:
    from certwarden.cli import cli

    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    (param,) = [p for p in command.params if p.name == option]
    assert isinstance(param.type, click.Choice)
    return tuple(param.type.choices)


def test_choices_come_from_their_vocabularies() -> None:
    from certwarden.discovery.net import StarttlsMode
    from certwarden.discovery.targets import Starttls
    from certwarden.lifecycle.replace import Selection
    from certwarden.lifecycle.trust import ALL_FORMATS
    from certwarden.report import ReportFormat
    from certwarden.x509.create import KeyAlgorithm

    assert _choices(["scan"], "starttls") == (*StarttlsMode, *Starttls)
    assert _choices(["report"], "fmt") == tuple(ReportFormat)
    assert _choices(["replace"], "selection") == tuple(Selection)
    assert _choices(["trust", "bundle"], "formats") == tuple(ALL_FORMATS)
    assert _choices(["create", "self-signed"], "algorithm") == tuple(KeyAlgorithm)
    assert "table" in _choices(["report"], "fmt")  # report's default is one of them


@pytest.mark.parametrize(("argv", "bad"), [
    (["report", "--format", "pdf"], "'pdf' is not one of 'table', 'json', 'csv', 'sarif', 'html'"),
    (["scan", "--starttls", "gopher", "127.0.0.1"], "'gopher' is not one of"),
])
def test_a_value_outside_the_vocabulary_is_one_line_exit_2(
        argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    from certwarden.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert bad in err
    assert err.count("\n") == 1


def test_python_dash_m_runs_the_command() -> None:
    out = subprocess.run([sys.executable, "-m", "certwarden.cli", "--version"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert (out.returncode, out.stdout.strip()) == (0, "certwarden, version 0.1.0")
    bad = subprocess.run([sys.executable, "-m", "certwarden.cli", "no-such-verb"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
