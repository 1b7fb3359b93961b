"""The one settings object: built at the edge, passed down; library code never reads the
environment (a scan of the source, so a new ``os.environ`` read below the CLI fails here)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from certwarden.acme.validation import PRIVATE_NETWORKS
from certwarden.errors import UsageError
from certwarden.settings import Settings, acme_settings_from_env

SRC = Path(__file__).resolve().parents[2] / "src" / "certwarden"
EDGE = ("cli/",)  # the only modules that may read the process environment


_READERS = ("environ", "environb", "getenv", "getenvb", "putenv")


def _reads(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id == "os" and \
            node.attr in _READERS
    if isinstance(node, ast.ImportFrom):
        return node.module == "os" and any(a.name in _READERS for a in node.names)
    return False


def _environment_reads(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return sorted(getattr(node, "lineno", 0) for node in ast.walk(tree) if _reads(node))


def test_only_the_cli_reads_the_environment() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(EDGE):
            continue
        offenders += [f"{rel}:{line}" for line in _environment_reads(path)]
    assert offenders == []


def test_the_scan_finds_an_environment_read(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom os import getenv\nx = os.environ.get('A')\n"
                     "y = os.getenv('B')\n")
    assert _environment_reads(probe) == [2, 3, 4]


def test_defaults_come_from_the_mapping_given(tmp_path: Path) -> None:
    s = Settings.from_env({"XDG_DATA_HOME": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'certwarden' / 'inventory.db'}"
    assert s.ca_dir == tmp_path / "certwarden" / "ca"
    assert s.acme is None
    assert s.passphrase is None
    assert s.warm_ocsp
    named = Settings.from_env({"CERTWARDEN_DATABASE_URL": "sqlite:///env.db"},
                              database="sqlite:///option.db")
    assert named.database_url == "sqlite:///option.db"  # --db wins over the environment


def test_worker_settings_survive_the_environment(tmp_path: Path) -> None:
    acme = dataclasses.replace(
        acme_settings_from_env({"CERTWARDEN_ACME_RESOLVER": "127.0.0.1:5353",
                                "CERTWARDEN_ACME_ALLOW": "10.1.0.0/16"}),
        nonces="database", eab_required=True)
    s = Settings(database_url="sqlite:///x.db", ca_dir=tmp_path, ca_name="issuing",
                 passphrase=lambda: b"pass word", pkcs11_pin="1234", warm_ocsp=False, acme=acme)
    env = s.to_env()
    back = Settings.from_env(env)
    assert back.passphrase is not None
    assert back.passphrase() == b"pass word"
    assert dataclasses.replace(back, passphrase=None, ca_dir=tmp_path) == \
        dataclasses.replace(s, passphrase=None)
    assert "CERTWARDEN_CA_DIR" not in env  # workers create no keys: only what they need
    off = Settings.from_env(dataclasses.replace(s, acme=None).to_env())
    assert off.acme is None
    default_allow = Settings.from_env({**env, "CERTWARDEN_ACME_ALLOW": ""})
    assert default_allow.acme is not None
    assert default_allow.acme.validator.allow == PRIVATE_NETWORKS


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    s = Settings(database_url="sqlite:///x.db", ca_dir=tmp_path, passphrase=lambda: b"hunter2",
                 pkcs11_pin="987654")
    assert "987654" not in repr(s)
    assert "hunter2" not in repr(s)


def test_a_passphrase_the_environment_cannot_hold_is_refused(tmp_path: Path) -> None:
    s = Settings(database_url="sqlite:///x.db", ca_dir=tmp_path, passphrase=lambda: b"\xff\xfe")
    with pytest.raises(ValueError, match=r"utf-8|codec"):
        s.to_env()
    with pytest.raises(ValueError, match="NUL"):
        dataclasses.replace(s, passphrase=lambda: b"a\0b").to_env()


def test_a_bad_port_in_the_environment_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match="CERTWARDEN_ACME_HTTP_PORT"):
        acme_settings_from_env({"CERTWARDEN_ACME_HTTP_PORT": "eighty"})
