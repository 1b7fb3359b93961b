"""lego (Debian's package) against our ACME server: http-01, tls-alpn-01 and dns-01 (through
the test's authoritative DNS server on loopback, fed by lego's exec provider), renew, revoke."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from acme_support import LiveAcme
from conftest import require_tool

pytestmark = [pytest.mark.peer("lego"), pytest.mark.slow]


@pytest.fixture
def lego() -> str:
    return require_tool("lego")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveAcme]:
    with LiveAcme(tmp_path).running() as acme:
        yield acme


def run_lego(lego: str, live: LiveAcme, tmp: Path, domains: list[str], *args: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [lego, "--server", live.directory, "--accept-tos", "--email", "ops@example.test",
           "--path", str(tmp / "lego")]
    for d in domains:
        cmd += ["--domains", d]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120,
                          check=False, env=live.tool_env(LEGO_CA_CERTIFICATES=str(live.root_pem),
                                                         **(env or {})))
    assert proc.returncode == 0, f"lego {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def issued(tmp: Path, name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(
        (tmp / "lego" / "certificates" / f"{name}.crt").read_bytes())


def names(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(sans.get_values_for_type(x509.DNSName))


def test_http01_renew_revoke(lego: str, live: LiveAcme, tmp_path: Path) -> None:
    http = ["--http", "--http.port", f"127.0.0.1:{live.http_port}"]
    run_lego(lego, live, tmp_path, ["lego.internal"], *http, "run")
    first = issued(tmp_path, "lego.internal")
    first[0].verify_directly_issued_by(live.ca.intermediate)
    assert names(first[0]) == ["lego.internal"]
    # 7-day certificates have fewer than 30 days left, so lego renews
    run_lego(lego, live, tmp_path, ["lego.internal"], *http, "renew", "--days", "30",
             "--no-random-sleep")
    renewed = issued(tmp_path, "lego.internal")[0]
    assert renewed.serial_number != first[0].serial_number
    run_lego(lego, live, tmp_path, ["lego.internal"], "revoke", "--reason", "5")
    assert live.ca.revoked == {renewed.serial_number: 5}


def test_tls_alpn01(lego: str, live: LiveAcme, tmp_path: Path) -> None:
    run_lego(lego, live, tmp_path, ["alpn.internal"], "--tls", "--tls.port",
             f"127.0.0.1:{live.tls_port}", "run")
    cert = issued(tmp_path, "alpn.internal")[0]
    cert.verify_directly_issued_by(live.ca.intermediate)
    assert names(cert) == ["alpn.internal"]


def test_dns01_with_wildcard(lego: str, live: LiveAcme, tmp_path: Path) -> None:
    hook = tmp_path / "dns-hook.sh"
    # lego's exec provider: "$1"=present|cleanup "$2"=fqdn "$3"=TXT value
    hook.write_text(f"""#!/bin/sh
set -e
case "$1" in
  present) echo "$2 $3" >> {live.txt_file} ;;
  cleanup) grep -v "^$2 " {live.txt_file} > {live.txt_file}.new || true
           mv {live.txt_file}.new {live.txt_file} ;;
esac
""")
    hook.chmod(0o755)
    run_lego(lego, live, tmp_path, ["*.dns.internal", "dns.internal"], "--dns", "exec",
             "--dns.resolvers", live.resolver, "--dns.disable-cp", "run",
             env={"EXEC_PATH": str(hook), "EXEC_PROPAGATION_TIMEOUT": "10",
                  "EXEC_POLLING_INTERVAL": "1", "EXEC_SEQUENCE_INTERVAL": "1"})
    cert = issued(tmp_path, "_.dns.internal")[0]
    cert.verify_directly_issued_by(live.ca.intermediate)
    assert names(cert) == ["*.dns.internal", "dns.internal"]
    # the server really looked the TXT record up in our DNS server
    assert ("_acme-challenge.dns.internal", "TXT") in live.dns.queries
    assert live.txt_file.read_text().strip() == ""  # present wrote it, cleanup emptied it
