"""The scanner against ``openssl s_server`` (a real, independent TLS implementation)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from certwarden.discovery.net import ProbeResult, Scanner, ScanOptions
from certwarden.discovery.targets import Endpoint
from certwarden.records import OutcomeStatus as Status  # the one outcome vocabulary
from certwarden.x509 import Certificate
from discovery_support import free_port, issue, write_pem
from tests.conftest import require_tool

pytestmark = pytest.mark.peer("openssl")


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"openssl s_server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("openssl s_server did not start")


@pytest.fixture
def s_server(tmp_path: Path) -> Iterator[tuple[int, list[str], int]]:
    openssl = require_tool("openssl")
    root = issue("OpenSSL Peer Root", ca=True)
    inter = issue("OpenSSL Peer Intermediate", issuer=root, ca=True)
    leaf = issue("peer.openssl.test", issuer=inter, rsa_bits=2048)
    cert = write_pem(tmp_path / "leaf.pem", leaf.pem)
    key = write_pem(tmp_path / "leaf.key", leaf.key_pem(), mode=0o600)
    chain = write_pem(tmp_path / "chain.pem", inter.pem, root.pem)
    ports = [free_port(), free_port()]
    procs = [
        # TLS 1.3, the whole chain sent.
        subprocess.Popen([openssl, "s_server", "-accept", f"127.0.0.1:{ports[0]}", "-cert",
                          str(cert), "-key", str(key), "-cert_chain", str(chain), "-quiet",
                          "-naccept", "10"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
        # TLS 1.2 only, leaf only.
        subprocess.Popen([openssl, "s_server", "-accept", f"127.0.0.1:{ports[1]}", "-cert",
                          str(cert), "-key", str(key), "-tls1_2", "-quiet", "-naccept", "10"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_listening(port, proc)
        shas = [leaf.record.sha256, inter.record.sha256, root.record.sha256]
        yield ports[0], shas, ports[1]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def test_openssl_s_server_chain_and_versions(s_server: tuple[int, list[str], int]) -> None:
    full, shas, tls12 = s_server

    async def go() -> dict[int, ProbeResult]:
        scanner = Scanner(ScanOptions(starttls="none"))
        eps = [Endpoint(host="127.0.0.1", port=p, sni="peer.openssl.test")
               for p in (full, tls12)]
        return {r.endpoint.port: r async for r in scanner.scan(eps)}

    got = asyncio.run(go())
    a, b = got[full], got[tls12]
    assert a.status is Status.OK, a.error
    assert [Certificate.from_der(d).sha256 for d in a.chain] == shas
    assert a.tls_version == "TLSv1.3"
    assert b.status is Status.OK, b.error
    assert [Certificate.from_der(d).sha256 for d in b.chain] == shas[:1]
    assert b.tls_version == "TLSv1.2"
    assert "RSA" in (b.cipher or "")
