"""The README's ACME sequence, as a user runs it: `certwarden ca init`, `certwarden serve
--https ... --http ...` (ACME mounted, validator pointed at a loopback DNS server and port),
`certwarden ca root`, then certbot against https://127.0.0.1:PORT/acme/directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from acme_support import DnsZone, free_port
from conftest import require_tool

pytestmark = [pytest.mark.peer("certbot"), pytest.mark.slow]
CERTWARDEN = str(Path(sys.executable).parent / "certwarden")


def wait_listening(port: int, proc: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"certwarden serve exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail("certwarden serve did not listen")


@pytest.mark.parametrize("workers", [1, 2])
def test_readme_sequence_with_certbot(tmp_path: Path, workers: int) -> None:
    certbot = require_tool("certbot")
    env = {k: v for k, v in os.environ.items()
           if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "CERTWARDEN_DATABASE_URL")}
    env.update(CERTWARDEN_CA_PASSPHRASE="correct horse battery staple",
               CERTWARDEN_CA_DIR=str(tmp_path / "keys"), XDG_DATA_HOME=str(tmp_path / "data"))
    db = ["--db", f"sqlite:///{tmp_path / 'inventory.db'}"]
    https, http, http01 = free_port(), free_port(), free_port()

    def cw(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([CERTWARDEN, *db, *args], env=env, capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0, f"certwarden {args[:2]}: {proc.stderr}"
        return proc

    cw("ca", "init", "--name", "README Test CA", "--base-url", f"http://127.0.0.1:{http}")
    zone = DnsZone(["internal"])
    with zone.serving() as (dns_host, dns_port):
        serve_args = ["serve", "--https", f"127.0.0.1:{https}", "--http", f"127.0.0.1:{http}",
                      "--acme-resolver", f"{dns_host}:{dns_port}",
                      "--acme-http-port", str(http01)]
        if workers > 1:  # one listener with several processes (nonces in the database)
            serve_args = [a for a in serve_args if a not in ("--http", f"127.0.0.1:{http}")]
            serve_args += ["--workers", str(workers)]
        log = tmp_path / "serve.log"
        with log.open("w") as out:
            serve = subprocess.Popen([CERTWARDEN, *db, *serve_args], env=env, stdout=out,
                                     stderr=subprocess.STDOUT, text=True)
        try:
            wait_listening(https, serve, log)
            cw("ca", "root", "--out", str(tmp_path / "root.pem"))
            proc = subprocess.run(
                [certbot, "certonly", "--standalone", "--http-01-port", str(http01),
                 "--http-01-address", "127.0.0.1",
                 "--server", f"https://127.0.0.1:{https}/acme/directory", "-d", "app.internal",
                 "--agree-tos", "-m", "ops@example.test", "--no-eff-email", "--non-interactive",
                 "--config-dir", str(tmp_path / "cb"), "--work-dir", str(tmp_path / "cbw"),
                 "--logs-dir", str(tmp_path / "cbl")],
                env={**env, "REQUESTS_CA_BUNDLE": str(tmp_path / "root.pem")},
                capture_output=True, text=True, timeout=120, check=False)
            assert proc.returncode == 0, (f"certbot:\n{proc.stdout}\n{proc.stderr}\n"
                                          f"serve log:\n{log.read_text()[-2000:]}")
        finally:
            serve.terminate()
            serve.wait(15)
    chain = x509.load_pem_x509_certificates(
        (tmp_path / "cb" / "live" / "app.internal" / "fullchain.pem").read_bytes())
    sans = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["app.internal"]
    chain[0].verify_directly_issued_by(chain[1])
    # the CA recorded it: `certwarden ca list` shows the serial
    listed = cw("ca", "list", "--json").stdout
    assert format(chain[0].serial_number, "x") in listed.lower()
