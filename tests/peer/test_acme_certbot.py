"""certbot (Debian's package) against our ACME server over HTTPS on 127.0.0.1: register,
certonly --standalone and --webroot over http-01, renew, revoke."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from acme_support import LiveAcme, free_port
from conftest import require_tool

pytestmark = [pytest.mark.peer("certbot"), pytest.mark.slow]


@pytest.fixture
def certbot() -> str:
    return require_tool("certbot")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveAcme]:
    with LiveAcme(tmp_path).running() as acme:
        yield acme


def run_certbot(certbot: str, live: LiveAcme, tmp: Path,
                *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [certbot, *args, "--server", live.directory, "--non-interactive",
           "--config-dir", str(tmp / "cb" / "config"), "--work-dir", str(tmp / "cb" / "work"),
           "--logs-dir", str(tmp / "cb" / "logs")]
    proc = subprocess.run(cmd, env=live.tool_env(REQUESTS_CA_BUNDLE=str(live.root_pem)),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{' '.join(args[:2])} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def test_certonly_standalone_renew_revoke(certbot: str, live: LiveAcme, tmp_path: Path) -> None:
    # Given certbot registering and answering http-01 with its own standalone server
    run_certbot(certbot, live, tmp_path, "certonly", "--standalone", "--http-01-port",
                str(live.http_port), "--http-01-address", "127.0.0.1", "-d", "app.internal",
                "--agree-tos", "-m", "ops@example.test", "--no-eff-email")
    live_dir = tmp_path / "cb" / "config" / "live" / "app.internal"
    first = leaf(live_dir / "cert.pem")
    first.verify_directly_issued_by(live.ca.intermediate)
    sans = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["app.internal"]
    chain = x509.load_pem_x509_certificates((live_dir / "fullchain.pem").read_bytes())
    assert chain[1] == live.ca.intermediate

    # When it renews (forced: the certificate is fresh)
    run_certbot(certbot, live, tmp_path, "renew", "--force-renewal",
                "--no-random-sleep-on-renew")
    renewed = leaf(live_dir / "cert.pem")
    assert renewed.serial_number != first.serial_number
    renewed.verify_directly_issued_by(live.ca.intermediate)

    # And revokes the renewed one
    run_certbot(certbot, live, tmp_path, "revoke", "--cert-path", str(live_dir / "cert.pem"),
                "--reason", "superseded", "--no-delete-after-revoke")
    assert live.ca.revoked == {renewed.serial_number: 4}
    row = live.server.store.certificate_by(
        sha256=__import__("hashlib").sha256(renewed.public_bytes(Encoding.DER)).hexdigest())
    assert row is not None
    assert row.revoked_at is not None


def test_certonly_webroot(certbot: str, tmp_path: Path) -> None:
    webroot = tmp_path / "www"
    webroot.mkdir()
    port = free_port()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    web = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(Quiet, directory=str(webroot)))
    threading.Thread(target=web.serve_forever, args=(0.05,), daemon=True).start()
    try:
        with LiveAcme(tmp_path, http_port=port).running() as live:
            run_certbot(certbot, live, tmp_path, "certonly", "--webroot", "-w", str(webroot),
                        "-d", "web.internal", "-d", "www.web.internal", "--agree-tos",
                        "--register-unsafely-without-email")
            cert = leaf(tmp_path / "cb" / "config" / "live" / "web.internal" / "cert.pem")
            cert.verify_directly_issued_by(live.ca.intermediate)
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert sorted(sans.get_values_for_type(x509.DNSName)) == ["web.internal",
                                                                      "www.web.internal"]
    finally:
        web.shutdown()
        web.server_close()
