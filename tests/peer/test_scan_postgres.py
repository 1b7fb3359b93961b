"""The scanner against a real PostgreSQL with ssl=on (SSLRequest, then TLS)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from certwarden.cli import main
from discovery_support import Issued, free_port, issue, write_pem
from tests.conftest import require_tool

pytestmark = pytest.mark.peer("postgresql")


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    require_tool("initdb", path=str(found[-1]) if found else None)
    return found[-1].parent


def _as_postgres(argv: list[str]) -> list[str]:
    # initdb refuses root: the cluster runs as the `postgres` user, as Debian's packages do.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="module")
def postgres_tls() -> Iterator[tuple[int, Issued]]:
    pg = _pg_bin()
    work = Path(tempfile.mkdtemp(prefix="certwarden-pgtls-"))
    work.chmod(0o755)
    cert = issue("postgres.scan.test", rsa_bits=2048)
    crt = write_pem(work / "server.crt", cert.pem)
    key = write_pem(work / "server.key", cert.key_pem(), mode=0o600)
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
        shutil.chown(key, "postgres")
        shutil.chown(crt, "postgres")
    port = free_port()
    data = work / "data"
    subprocess.run(_as_postgres([str(pg / "initdb"), "-D", str(data), "-A", "trust",
                                 "--no-sync", "-U", "postgres"]),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    opts = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={work} "
            f"-c ssl=on -c ssl_cert_file={crt} -c ssl_key_file={key} -c fsync=off")
    subprocess.run(_as_postgres([str(pg / "pg_ctl"), "-D", str(data), "-l",
                                 str(work / "log"), "-w", "-o", opts, "start"]),
                   check=True, stdout=subprocess.DEVNULL)
    try:
        yield port, cert
    finally:
        subprocess.run(_as_postgres([str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                     "stop"]), check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def test_postgres_sslrequest_then_tls(postgres_tls: tuple[int, Issued], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    port, cert = postgres_tls
    out = tmp_path / "pg.json"
    db = f"sqlite:///{tmp_path / 'inv.db'}"
    # An odd port: auto cannot guess PostgreSQL (it never speaks first), so name it.
    assert main(["--db", db, "scan", f"127.0.0.1:{port}", "--starttls", "postgres",
                 "--json-out", str(out)]) == 0
    [obj] = json.loads(out.read_text())
    assert obj["error"] is None
    assert obj["starttls"] == "postgres"
    assert obj["chain"][0]["sha256"] == cert.record.sha256
    assert obj["tls_version"] == "TLSv1.3"
    # Without STARTTLS the same port is not TLS: a typed outcome, not a crash.
    assert main(["--db", db, "scan", f"127.0.0.1:{port}", "--starttls", "none",
                 "--json-out", str(out)]) == 0
    [plain] = json.loads(out.read_text())
    assert plain["chain"] == []
    assert plain["error"].split(":")[0] in ("not-tls", "closed")
    capsys.readouterr()
