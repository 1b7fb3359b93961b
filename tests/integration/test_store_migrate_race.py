"""Commands started together on a fresh inventory all migrate it: one does, the others wait
and find the schema in place (issue 17: two of three failed with "table ... already exists")."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI

OPENERS = 4
ROUNDS = 3
OPEN = "import sys; from certwarden.store.db import make_engine; make_engine(sys.argv[1])"


def _open_together(url: str) -> list[tuple[int, str]]:
    procs = [subprocess.Popen([sys.executable, "-c", OPEN, url], stderr=subprocess.PIPE,
                              text=True) for _ in range(OPENERS)]
    out = []
    for p in procs:
        _, err = p.communicate(timeout=120)  # closes the pipe: no ResourceWarning
        out.append((p.returncode, err))
    return out


def _fresh_postgres() -> Iterator[str]:
    base = os.environ.get("CERTWARDEN_TEST_POSTGRES_URL")
    if not base:
        if IN_CI:
            pytest.fail("CI=true but no PostgreSQL: run through tests/with-postgres.sh")
        pytest.skip("no PostgreSQL (run through tests/with-postgres.sh)")
    name = f"cw_race_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_openers_started_together_all_succeed(tmp_path: Path, backend: str) -> None:
    for n in range(ROUNDS):
        if backend == "sqlite":
            urls: Iterator[str] = iter([f"sqlite:///{tmp_path / f'fresh-{n}.db'}"])
        else:
            urls = _fresh_postgres()
        for url in urls:
            results = _open_together(url)
            assert [code for code, _ in results] == [0] * OPENERS, [e for _, e in results]
            engine = create_engine(url)
            try:
                tables = set(inspect(engine).get_table_names())
            finally:
                engine.dispose()
            assert {"inv_certificates", "alembic_version"} <= tables
