"""Our X.509 toolkit against openssl, the real thing: fingerprints, legacy signatures, chains."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from certwarden.x509 import Kind, read_source
from certwarden.x509 import create as mk

pytestmark = pytest.mark.peer("openssl")


def _run(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(args, input=stdin, capture_output=True, check=True, timeout=60).stdout


@pytest.mark.parametrize(("digest", "serial"), [("sha1", "5"), ("md5", "7"), ("sha256", "-5")])
def test_legacy_self_signed_made_by_openssl(openssl: str, tmp_path: Path, digest: str,
                                            serial: str) -> None:
    # Given a self-signed RSA certificate that openssl signs with an old digest (or a
    # negative serial, which RFC 5280 forbids but old tools produced)
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    _run(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", f"-{digest}",
         "-set_serial", serial, "-subj", "/CN=legacy/O=Old Appliance", "-days", "30",
         "-keyout", str(key), "-out", str(crt))
    cert = read_source(str(crt)).certificates[0]
    # Then it is self-signed by signature (cryptography alone refuses SHA-1/MD5 here)
    assert cert.kind is Kind.SELF_SIGNED
    assert cert.signature_hash == digest
    assert cert.serial == int(serial)
    fp = _run(openssl, "x509", "-in", str(crt), "-noout", "-fingerprint", "-sha256").decode()
    assert fp.strip().split("=", 1)[1].replace(":", "").lower() == cert.sha256


def test_dev_chain_passes_openssl_x509_strict(openssl: str, tmp_path: Path) -> None:
    ca = mk.dev_ca("Strict CA")
    leaf = mk.leaf(ca, ["strict.test", "127.0.0.1"])
    (tmp_path / "ca.pem").write_text(ca.certificate.pem())
    (tmp_path / "leaf.pem").write_text(leaf.certificate.pem())
    out = subprocess.run([openssl, "verify", "-x509_strict", "-purpose", "sslserver",
                          "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.strip().endswith("OK")


def test_self_signed_from_create_passes_openssl_x509_strict(openssl: str, tmp_path: Path) -> None:
    ss = mk.self_signed(["selfie.test"])
    (tmp_path / "ss.pem").write_text(ss.certificate.pem())
    out = subprocess.run([openssl, "verify", "-x509_strict", "-purpose", "sslserver",
                          "-CAfile", str(tmp_path / "ss.pem"), str(tmp_path / "ss.pem")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr + out.stdout


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[int, mk.CertifiedKey, mk.CertifiedKey]]:
    ca = mk.dev_ca("Handshake CA")
    leaf = mk.leaf(ca, ["localhost", "127.0.0.1"])
    (tmp_path / "chain.pem").write_text(leaf.certificate.pem() + ca.certificate.pem())
    (tmp_path / "key.pem").write_bytes(leaf.key_pem())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello\n")
            except (ssl.SSLError, OSError):
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield port, ca, leaf
    stop.set()
    t.join(2)
    srv.close()


def test_python_ssl_handshake_trusts_dev_chain(
        dev_server: tuple[int, mk.CertifiedKey, mk.CertifiedKey], tmp_path: Path) -> None:
    port, ca, _leaf = dev_server
    client = ssl.create_default_context(cadata=ca.certificate.pem())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            client.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.recv(6) == b"hello\n"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_spki_pin_matches_openssl(openssl: str, tmp_path: Path) -> None:
    issued = mk.self_signed(["pin.test"])
    (tmp_path / "c.pem").write_text(issued.certificate.pem())
    pub = _run(openssl, "x509", "-in", str(tmp_path / "c.pem"), "-noout", "-pubkey")
    der = _run(openssl, "pkey", "-pubin", "-outform", "DER", stdin=pub)
    assert base64.b64encode(hashlib.sha256(der).digest()).decode() == issued.certificate.spki_sha256
