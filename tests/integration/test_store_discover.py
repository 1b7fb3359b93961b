"""``certwarden discover files`` into both databases: re-runs, a file that went away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from certwarden.cli import main
from certwarden.store.inventory import Inventory
from discovery_support import issue, write_pem


def _fresh(url: str) -> str:
    if url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    return url


def test_files_rerun_and_removal(db_urls: list[str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "etc"
    tree.mkdir()
    a, b = issue("a.disk.test"), issue("b.disk.test")
    write_pem(tree / "a.crt", a.pem)
    write_pem(tree / "a.key", a.key_pem(), mode=0o644)
    write_pem(tree / "b.crt", b.pem)
    for url in db_urls:
        db = _fresh(url)
        assert main(["--db", db, "discover", "files", str(tree)]) == 0
        assert main(["--db", db, "discover", "files", str(tree)]) == 0
        (tree / "b.crt").unlink()
        assert main(["--db", db, "discover", "files", str(tree)]) == 0
        capsys.readouterr()
        assert main(["--db", db, "inventory", "diff", "2", "3", "--json"]) == 0
        diff = json.loads(capsys.readouterr().out)
        assert diff["gone"] == [{"location": f"file://{tree}/b.crt",
                                 "sha256": b.record.sha256}]
        assert diff["unchanged"] == 1
        with Inventory.open(db) as inv:
            [current] = list(inv.sightings())
            assert current.certificate == a.record
            assert current.key is not None
            assert (current.key.path, current.key.encrypted, current.key.mode) == (
                str(tree / "a.key"), False, 0o644)
            assert len(list(inv.sightings(latest_only=False))) == 2
            assert [c.change for c in inv.changes(3)] == ["gone"]
            assert [s.sightings for s in inv.scans()] == [2, 2, 1]
        write_pem(tree / "b.crt", b.pem)  # back for the next database
        capsys.readouterr()


@pytest.mark.parametrize(("argv", "message"), [
    (["discover", "files", "/nonexistent/certs"], "no such file or directory"),
    (["discover", "k8s", "--from-file", "/nonexistent/dump.yaml"], "No such file"),
    (["discover", "files", "/tmp", "--max-size", "0"], "--max-size"),
])
def test_bad_discover_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        argv: list[str], message: str) -> None:
    assert main(["--db", f"sqlite:///{tmp_path / 'x.db'}", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
