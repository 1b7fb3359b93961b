"""Replacing self-signed certificates from the inventory, and distributing the root.

Real components throughout: the private CA (SQLite ledger, encrypted key file), the file sweep
into the inventory, a Python TLS server on 127.0.0.1 serving the swapped files, keytool and
openssl reading the truststores.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import yaml

from certwarden.cli import main
from certwarden.store.inventory import Inventory
from certwarden.x509 import Kind, read_source
from certwarden.x509 import create as mk
from certwarden.x509.verify import TrustStore, verify_chain
from tests.conftest import require_tool
from tests.tlsserver import TLSServer


@pytest.fixture
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "lifecycle-test-passphrase")
    monkeypatch.setenv("CERTWARDEN_CA_DIR", str(tmp_path / "ca"))
    etc = tmp_path / "etc"
    etc.mkdir()
    ss = mk.self_signed(["localhost", "127.0.0.1"])
    (etc / "web.pem").write_text(ss.certificate.pem())
    mk.write_private(etc / "web-key.pem", ss.key_pem())
    dev = mk.dev_ca("Someone else's CA")
    other = mk.leaf(dev, ["managed.test"])
    (etc / "managed.pem").write_text(other.certificate.pem())
    mk.write_private(etc / "managed-key.pem", other.key_pem())
    return tmp_path


def _root(tmp: Path) -> Path:
    assert main(["ca", "root", "--out", str(tmp / "root.pem")]) == 0
    return tmp / "root.pem"


def test_replace_in_place_then_serve(estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc = estate / "etc"
    old = read_source(str(etc / "web.pem")).certificates[0]
    assert main(["ca", "init", "--name", "Lifecycle CA"]) == 0
    assert main(["discover", "files", str(etc)]) == 0
    capsys.readouterr()

    # The dry run plans only the self-signed leaf, in place, and issues nothing.
    assert main(["replace", "--dry-run", "--json"]) == 0
    [planned] = json.loads(capsys.readouterr().out)
    assert planned["location"].endswith("/etc/web.pem")
    assert planned["action"] == "in-place"
    assert planned["status"] == "planned"
    assert (etc / "web.pem").read_text() == old.pem()

    assert main(["replace", "--apply", "--json", "--out", str(estate / "out")]) == 0
    [done] = json.loads(capsys.readouterr().out)
    assert done["status"] == "replaced"
    assert sorted(planned["names"]) == ["127.0.0.1", "localhost"]

    new_chain = read_source(str(etc / "web.pem")).certificates
    root = read_source(str(_root(estate))).certificates[0]
    assert new_chain[0].sha256 == done["new_sha256"]
    assert new_chain[0].kind is Kind.ISSUED
    result = verify_chain(new_chain[0], new_chain[1:], TrustStore.of([root]),
                          hostname="localhost")
    assert result.valid, result.problems
    assert (etc / "web-key.pem").stat().st_mode & 0o777 == 0o600
    # Backups live in .certwarden-backup/ (issue 11: beside the files they were swept as
    # live certificates), with the original modes.
    [cert_backup] = (etc / ".certwarden-backup").glob("web.pem.*")
    [key_backup] = (etc / ".certwarden-backup").glob("web-key.pem.*")
    assert read_source(str(cert_backup)).certificates[0] == old
    assert key_backup.stat().st_mode & 0o777 == 0o600
    assert (etc / ".certwarden-backup").stat().st_mode & 0o777 == 0o700
    # The CA-issued certificate from another CA was left alone.
    assert "Someone else" in read_source(str(etc / "managed.pem")).certificates[0].issuer

    # The inventory already shows the new certificate at the location.
    inv = Inventory.open(f"sqlite:///{estate / 'inv.db'}")  # the URL the fixture set
    try:
        served = {s.location.uri: s.certificate.sha256 for s in inv.sightings()
                  if s.position == 0}
    finally:
        inv.close()
    [uri] = [u for u in served if u.endswith("/etc/web.pem")]
    assert served[uri] == done["new_sha256"]

    # And a client that trusts only the private root completes a handshake with the files.
    ctx = ssl.create_default_context(cafile=str(estate / "root.pem"))
    with TLSServer((etc / "web.pem").read_text(), (etc / "web-key.pem").read_bytes(),
                   estate / "srv") as srv, \
            socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.recv(6) == b"hello\n"

    # Nothing self-signed is left to replace.
    assert main(["replace", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_replace_writes_out_when_it_cannot_swap(estate: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    etc = estate / "etc"
    (etc / "web-key.pem").unlink()  # the key lives elsewhere: cannot swap in place
    assert main(["ca", "init", "--name", "Lifecycle CA"]) == 0
    assert main(["discover", "files", str(etc)]) == 0
    capsys.readouterr()
    assert main(["replace", "--apply", "--json", "--out", str(estate / "out")]) == 0
    [done] = json.loads(capsys.readouterr().out)
    assert done["action"] == "write-out"
    assert done["status"] == "written"
    cert_path, key_path = (Path(p) for p in done["paths"])
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert read_source(str(cert_path)).certificates[0].sha256 == done["new_sha256"]
    assert read_source(str(key_path)).keys[0].spki_sha256 == \
        read_source(str(cert_path)).certificates[0].spki_sha256


def test_trust_bundles_load_in_real_clients(estate: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    keytool, openssl = require_tool("keytool"), require_tool("openssl")
    assert main(["ca", "init", "--name", "Bundle CA"]) == 0
    out = estate / "trust"
    assert main(["trust", "bundle", "--out", str(out), "--namespace", "apps"]) == 0
    root = read_source(str(_root(estate))).certificates[0]
    assert read_source(str(out / "ca-bundle.pem")).certificates == (root,)
    listing = subprocess.run([keytool, "-list", "-keystore", str(out / "truststore.jks"),
                              "-storepass", "changeit"], capture_output=True, text=True,
                             timeout=120, check=True).stdout
    assert "trustedCertEntry" in listing
    assert ":".join(root.sha256[i:i + 2] for i in range(0, 64, 2)).upper() in listing
    p12 = subprocess.run([openssl, "pkcs12", "-in", str(out / "truststore.p12"), "-nokeys",
                          "-passin", "pass:changeit"], capture_output=True, timeout=60,
                         check=True).stdout
    assert read_source_bytes(p12) == root.sha256
    doc = yaml.safe_load((out / "trust-configmap.yaml").read_text())
    assert doc["kind"] == "ConfigMap"
    assert doc["metadata"]["namespace"] == "apps"
    assert root.pem().strip() in doc["data"]["ca.crt"]


def read_source_bytes(data: bytes) -> str:
    from certwarden.x509 import parse_bytes

    return parse_bytes(data).certificates[0].sha256


@pytest.mark.parametrize("argv", [["replace"], ["trust", "bundle", "--out", "x"]])
def test_without_a_ca_is_one_line_exit_2(estate: Path, argv: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", "files", str(estate / "etc")]) == 0
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("certwarden: error:")
