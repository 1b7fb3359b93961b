"""Caddy (Debian's package): automatic HTTPS for a site with our directory as its ACME CA,
then an HTTPS request to that site trusting only our root succeeds."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509

from acme_support import LiveAcme, free_port
from conftest import require_tool

pytestmark = [pytest.mark.peer("caddy"), pytest.mark.slow]


def https_get(port: int, host: str, root: Path) -> tuple[bytes, x509.Certificate]:
    ctx = ssl.create_default_context(cafile=str(root))  # our root and nothing else
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return data, x509.load_der_x509_certificate(der)


def test_caddy_automatic_https(tmp_path: Path) -> None:
    caddy = require_tool("caddy")
    http_port, https_port = free_port(), free_port()
    with LiveAcme(tmp_path, http_port=http_port, tls_port=https_port).running() as live:
        caddyfile = tmp_path / "Caddyfile"
        caddyfile.write_text(f"""{{
    admin off
    http_port {http_port}
    https_port {https_port}
    acme_ca {live.directory}
    acme_ca_root {live.root_pem}
    email ops@example.test
    storage file_system {tmp_path / "caddy-data"}
    skip_install_trust
    ocsp_stapling off
}}
caddy.internal {{
    bind 127.0.0.1
    respond "hello from caddy" 200
}}
""")
        env = live.tool_env(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg-data"),
                            XDG_CONFIG_HOME=str(tmp_path / "xdg-config"))
        log = (tmp_path / "caddy.log").open("w")
        proc = subprocess.Popen([caddy, "run", "--config", str(caddyfile), "--adapter",
                                 "caddyfile"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            last: Exception | None = None
            while time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "caddy.log").read_text()
                try:
                    body, cert = https_get(https_port, "caddy.internal", live.root_pem)
                    break
                except (OSError, ssl.SSLError) as exc:
                    last = exc
                    time.sleep(0.5)
            else:
                pytest.fail(f"Caddy never served a trusted certificate ({last}):\n"
                            + (tmp_path / "caddy.log").read_text()[-3000:])
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
    assert b"200 OK" in body.split(b"\r\n", 1)[0]
    assert body.endswith(b"hello from caddy")
    cert.verify_directly_issued_by(live.ca.intermediate)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["caddy.internal"]
