"""Shared fixtures. Peer tools: skipped locally with a reason, a failure in CI (CI=true)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPORA = (ROOT / ".." / "shared" / "corpora").resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# nginx_server, postfix_server, dovecot_server: real servers on loopback (see the module).
pytest_plugins = ("tests.realservers",)


def pytest_configure(config: pytest.Config) -> None:
    """No test may touch the user's own inventory or CA: point the defaults at a temp dir."""
    import tempfile

    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="certwarden-test-data-")
    for name in ("CERTWARDEN_DATABASE_URL", "CERTWARDEN_CA_DIR", "CERTWARDEN_CA_PASSPHRASE",
                 "CERTWARDEN_PASSWORD", "CERTWARDEN_PKCS11_PIN"):
        os.environ.pop(name, None)


def require_tool(name: str, *, path: str | None = None) -> str:
    """The path of a peer tool, or skip (locally) / fail (CI) with the reason."""
    found = path if path and os.path.exists(path) else shutil.which(name)
    if found:
        return found
    reason = f"peer tool {name!r} is not installed (make test installs it)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def require_corpus(*parts: str) -> Path:
    p = CORPORA.joinpath(*parts)
    if not p.exists():
        reason = f"corpus {p} is missing"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return p


@pytest.fixture
def corpora() -> Path:
    return require_corpus()


@pytest.fixture
def openssl() -> str:
    return require_tool("openssl")


@pytest.fixture
def db_urls(tmp_path: Path) -> list[str]:
    """SQLite always; PostgreSQL too when tests/with-postgres.sh started one."""
    urls = [f"sqlite:///{tmp_path / 'inventory.db'}"]
    pg = os.environ.get("CERTWARDEN_TEST_POSTGRES_URL")
    if pg:
        urls.append(pg)
    elif IN_CI:
        pytest.fail("CI=true but no PostgreSQL: run through tests/with-postgres.sh")
    return urls
