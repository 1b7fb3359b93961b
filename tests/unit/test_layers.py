"""The layers of DESIGN.md hold: import-linter's contracts (pyproject.toml) are kept."""

from __future__ import annotations

import ast
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


# The inventory's low-level scan writes: only ``certwarden.store`` (the recorder) calls them.
RAW_SCAN_WRITES = frozenset({"start_scan", "add_sightings", "record_outcome", "finish_scan",
                             "write_batch"})


def _raw_scan_writes(source: str) -> list[str]:
    """Every use of a raw scan write in ``source``: ``x.start_scan`` or ``"start_scan"``
    (as for ``getattr``), by line."""
    hits: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in RAW_SCAN_WRITES:
            hits.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Constant) and node.value in RAW_SCAN_WRITES:
            hits.append((node.lineno, repr(node.value)))
    return [f"line {n}: {what}" for n, what in sorted(hits)]


def test_commands_write_the_inventory_only_through_the_recorder() -> None:
    # Every command, lifecycle step, route and source outside the store writes a scan with
    # ``with inventory.record(kind, targets) as rec: rec.add(item)``, never by hand.
    package = ROOT / "src" / "certwarden"
    offenders = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if rel.parts[0] == "store":
            continue
        hits = _raw_scan_writes(path.read_text(encoding="utf-8"))
        if hits:
            offenders[str(rel)] = hits
    assert offenders == {}


def test_the_raw_write_check_sees_a_command_that_writes_by_hand() -> None:
    by_hand = ("scan_id = inv.start_scan('net', targets)\n"
               "getattr(inv, 'add_sightings')(scan_id, [])\n"
               "inv.finish_scan(scan_id)\n")
    assert _raw_scan_writes(by_hand) == ["line 1: .start_scan", "line 2: 'add_sightings'",
                                         "line 3: .finish_scan"]
    assert _raw_scan_writes("with inv.record('net', t) as rec:\n    rec.add(x)\n") == []
