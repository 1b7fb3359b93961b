"""The layers of DESIGN.md hold: import-linter's contracts (pyproject.toml) are kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_every_command_module_is_registered_and_importable() -> None:
    from certwarden.cli import COMMAND_MODULES, cli

    assert len(set(COMMAND_MODULES)) == len(COMMAND_MODULES)
    assert {"inspect", "create"} <= set(cli.commands)
