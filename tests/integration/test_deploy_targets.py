"""The deploy mechanism on every kind of target: PKCS#12 and JKS keystores rewritten in place
(same alias, same password; read back by openssl and keytool), Kubernetes TLS Secrets
through the API (created, replaced, restored or deleted on rollback), and a manifest.

The Kubernetes API server here is a FAKE — an in-memory dict behind http.server — the one fake
the project allows (no real API server can run in this sandbox). Everything else is real.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certwarden.lifecycle.deploy import DeployStatus, Recipe, deploy
from certwarden.lifecycle.deploy_targets import DeployTarget, Material, TargetKind
from certwarden.x509 import create as mk
from certwarden.x509 import parse_bytes
from tests.conftest import require_tool


def _material(name: str = "app.test") -> Material:
    ca = mk.dev_ca("Deploy test CA")
    leaf = mk.leaf(ca, [name])
    return Material(leaf_der=leaf.certificate.der, chain_der=(ca.certificate.der,),
                    key_pem=leaf.key_pem(), serial=f"{leaf.certificate.serial:x}",
                    sha256=leaf.certificate.sha256)


def _old_p12(path: Path, password: str, alias: str) -> bytes:
    old = mk.self_signed(["app.test"])
    key = serialization.load_pem_private_key(old.key_pem(), None)
    data = pkcs12.serialize_key_and_certificates(
        alias.encode(), key, cx509.load_der_x509_certificate(old.certificate.der),  # type: ignore[arg-type]
        None, serialization.BestAvailableEncryption(password.encode()))
    path.write_bytes(data)
    path.chmod(0o640)
    return data


def test_pkcs12_in_place_keeps_alias_and_password(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    store, pw = tmp_path / "keystore.p12", tmp_path / "storepass"
    pw.write_text("tomcat-pass\n")
    old = _old_p12(store, "tomcat-pass", "tomcat")
    new = _material()
    recipe = Recipe(targets=(DeployTarget(kind=TargetKind.PKCS12, path=str(store),
                                    password_file=str(pw)),))
    result = deploy(new, recipe, location=f"file://{store}")
    assert result.status is DeployStatus.DEPLOYED
    loaded = pkcs12.load_pkcs12(store.read_bytes(), b"tomcat-pass")
    assert loaded.cert is not None
    assert loaded.cert.friendly_name == b"tomcat"
    assert loaded.cert.certificate.public_bytes(serialization.Encoding.DER) == new.leaf_der
    assert store.stat().st_mode & 0o777 == 0o600  # it holds a key
    [backup] = result.backups
    assert Path(backup).read_bytes() == old
    out = subprocess.run([openssl, "pkcs12", "-in", str(store), "-nokeys", "-passin",
                          "pass:tomcat-pass"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert "friendlyName: tomcat" in out

    # A failing reload puts the old keystore back, byte for byte.
    again = deploy(_material(), Recipe(targets=recipe.targets, reload="exit 9"),
                   location=f"file://{store}")
    assert again.status is DeployStatus.ROLLED_BACK
    assert again.reason == "reload 'exit 9' failed (exit 9)"
    assert pkcs12.load_pkcs12(store.read_bytes(), b"tomcat-pass").cert.certificate \
        .public_bytes(serialization.Encoding.DER) == new.leaf_der  # type: ignore[union-attr]


def test_jks_in_place_keeps_alias_and_password(tmp_path: Path) -> None:
    keytool = require_tool("keytool")
    store, pw = tmp_path / "keystore.jks", tmp_path / "storepass"
    pw.write_text("changeit")
    subprocess.run([keytool, "-genkeypair", "-alias", "web", "-keyalg", "EC", "-groupname",
                    "secp256r1", "-dname", "CN=app.test", "-validity", "30", "-keystore",
                    str(store), "-storetype", "JKS", "-storepass", "changeit", "-keypass",
                    "changeit"], check=True, capture_output=True, timeout=120)
    new = _material()
    result = deploy(new, Recipe(targets=(DeployTarget(kind=TargetKind.JKS, path=str(store),
                                                password_file=str(pw)),)),
                    location=f"file://{store}")
    assert result.status is DeployStatus.DEPLOYED
    listing = subprocess.run([keytool, "-list", "-v", "-keystore", str(store), "-storepass",
                              "changeit"], capture_output=True, text=True, timeout=120,
                             check=True).stdout
    assert re.search(r"Alias name: web\b", listing)
    assert "PrivateKeyEntry" in listing
    assert "Certificate chain length: 2" in listing
    fingerprint = ":".join(new.sha256[i:i + 2] for i in range(0, 64, 2)).upper()
    assert fingerprint in listing


class FakeKubeAPI(BaseHTTPRequestHandler):
    """FAKE Kubernetes API (secrets only): GET, POST, PUT, DELETE on an in-memory dict."""

    secrets: ClassVar[dict[tuple[str, str], dict[str, Any]]] = {}
    calls: ClassVar[list[str]] = []
    _path = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets(?:/([^/?]+))?")

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        m = self._path.match(self.path)
        self.calls.append(f"{self.command} {self.path.split('?')[0]}")
        if m is None:
            self._reply(404, {"kind": "Status", "code": 404})
            return
        ns, name = m.group(1), m.group(2)
        body = {}
        if self.command in ("POST", "PUT"):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            name = name or body["metadata"]["name"]
        key = (ns, str(name))
        if self.command == "GET" or self.command == "DELETE":
            if key not in self.secrets:
                self._reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                return
            found = self.secrets.pop(key) if self.command == "DELETE" else self.secrets[key]
            self._reply(200, found)
            return
        if (self.command == "POST") == (key in self.secrets):
            self._reply(409 if self.command == "POST" else 404, {"kind": "Status"})
            return
        self.secrets[key] = body
        self._reply(201 if self.command == "POST" else 200, body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    FakeKubeAPI.secrets, FakeKubeAPI.calls = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKubeAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
           "clusters": [{"name": "c", "cluster": {
               "server": f"http://127.0.0.1:{server.server_address[1]}"}}],
           "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
           "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    yield path
    server.shutdown()
    server.server_close()


def test_k8s_secret_created_replaced_and_rolled_back(kubeconfig: Path) -> None:
    target = DeployTarget(kind=TargetKind.K8S_SECRET, namespace="web", name="tls",
                    kubeconfig=str(kubeconfig))
    first = _material()
    assert deploy(first, Recipe(targets=(target,)), location="k8s://test/web/tls#tls.crt") \
        .status is DeployStatus.DEPLOYED
    secret = FakeKubeAPI.secrets[("web", "tls")]
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]) == first.fullchain_pem()
    assert base64.b64decode(secret["data"]["tls.key"]) == first.key_pem
    assert FakeKubeAPI.calls == ["GET /api/v1/namespaces/web/secrets/tls",
                                 "POST /api/v1/namespaces/web/secrets"]

    second = _material()
    assert deploy(second, Recipe(targets=(target,)), location="k8s://test/web/tls#tls.crt") \
        .status is DeployStatus.DEPLOYED
    assert FakeKubeAPI.calls[-1] == "PUT /api/v1/namespaces/web/secrets/tls"
    assert base64.b64decode(FakeKubeAPI.secrets[("web", "tls")]["data"]["tls.crt"]) == \
        second.fullchain_pem()

    # Rolled back: the Secret is what it was before (replaced back) ...
    failed = deploy(_material(), Recipe(targets=(target,), reload="false"),
                    location="k8s://test/web/tls#tls.crt")
    assert failed.status is DeployStatus.ROLLED_BACK
    assert base64.b64decode(FakeKubeAPI.secrets[("web", "tls")]["data"]["tls.crt"]) == \
        second.fullchain_pem()
    # ... and a Secret the failed deploy created is deleted again.
    other = DeployTarget(kind=TargetKind.K8S_SECRET, namespace="web", name="new",
                   kubeconfig=str(kubeconfig))
    assert deploy(_material(), Recipe(targets=(other,), reload="false"),
                  location="k8s://test/web/new#tls.crt").status is DeployStatus.ROLLED_BACK
    assert ("web", "new") not in FakeKubeAPI.secrets
    assert FakeKubeAPI.calls[-1] == "DELETE /api/v1/namespaces/web/secrets/new"


def test_k8s_unreachable_fails_before_touching_anything(tmp_path: Path) -> None:
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "x",
           "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
           "users": [{"name": "u", "user": {"token": "t"}}],
           "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}
    (tmp_path / "kc").write_text(yaml.safe_dump(cfg))
    key = tmp_path / "key.pem"
    key.write_bytes(b"old key")
    key.chmod(0o600)
    recipe = Recipe(targets=(DeployTarget(kind=TargetKind.KEY, path=str(key)),
                             DeployTarget(kind=TargetKind.K8S_SECRET, namespace="a", name="b",
                                    kubeconfig=str(tmp_path / "kc"))))
    result = deploy(_material(), recipe, location="k8s://x/a/b#tls.crt")
    assert result.status is DeployStatus.FAILED
    assert result.location == "k8s secret a/b"
    assert result.reason is not None
    assert result.reason.startswith("read: ")
    assert key.read_bytes() == b"old key"


def test_a_pre_deploy_check_refuses_before_anything_is_touched(tmp_path: Path) -> None:
    from certwarden.lifecycle.deploy import DeployRefused

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_bytes(b"old cert")
    key.write_bytes(b"old key")
    seen: list[str] = []

    def no_new_keys(material: Material, recipe: Recipe, *, location: str) -> None:
        seen.append(material.sha256)
        raise DeployRefused(location, "no recorded pin covers the new key")

    new = _material()
    hook = tmp_path / "hook-ran"
    result = deploy(new, Recipe(targets=(DeployTarget(kind=TargetKind.KEY, path=str(key)),
                                         DeployTarget(kind=TargetKind.FULLCHAIN, path=str(cert))),
                                reload=f"touch {hook}"),
                    location="tls://127.0.0.1:443", checks=(no_new_keys,))
    assert result.status is DeployStatus.REFUSED
    assert result.line() == "refused: tls://127.0.0.1:443: no recorded pin covers the new key"
    assert seen == [new.sha256]
    assert (cert.read_bytes(), key.read_bytes()) == (b"old cert", b"old key")
    assert not hook.exists()
    assert result.backups == ()


def test_replace_apply_replaces_a_discovered_secret_through_the_api(
        kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from certwarden.cli import main

    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "k8s-replace-passphrase")
    monkeypatch.setenv("CERTWARDEN_CA_DIR", str(tmp_path / "ca"))
    assert main(["ca", "init", "--name", "Cluster CA"]) == 0
    old = mk.self_signed(["shop.test"])
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
              "metadata": {"name": "shop-tls", "namespace": "shop"},
              "data": {"tls.crt": base64.b64encode(old.certificate.pem().encode()).decode(),
                       "tls.key": base64.b64encode(old.key_pem()).decode()}}
    FakeKubeAPI.secrets[("shop", "shop-tls")] = secret
    (tmp_path / "dump.yaml").write_text(yaml.safe_dump({"kind": "List", "items": [secret]}))
    assert main(["discover", "k8s", "--from-file", str(tmp_path / "dump.yaml")]) == 0
    (tmp_path / "lc.yaml").write_text(
        f"deploy:\n  - location: 'k8s://dump/shop/*'\n"
        f"    kubernetes: {{kubeconfig: '{kubeconfig}'}}\n")
    capsys.readouterr()
    assert main(["replace", "--apply", "--json", "--config", str(tmp_path / "lc.yaml")]) == 0
    [done] = json.loads(capsys.readouterr().out)
    assert (done["location"], done["action"], done["status"]) == (
        "k8s://dump/shop/shop-tls#tls.crt", "in-place", "replaced")
    stored = FakeKubeAPI.secrets[("shop", "shop-tls")]
    chain = parse_bytes(base64.b64decode(stored["data"]["tls.crt"]), source="secret")
    assert chain.certificates[0].sha256 == done["new_sha256"]
    assert FakeKubeAPI.calls[-1] == "PUT /api/v1/namespaces/shop/secrets/shop-tls"
    assert main(["managed", "list", "--json"]) == 0
    [m] = json.loads(capsys.readouterr().out)
    assert m["locations"] == ["k8s://dump/shop/shop-tls#tls.crt"]
    assert m["recipe"]["targets"][0]["kind"] == "k8s-secret"


def test_backups_of_two_deploys_in_one_second_are_both_kept(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_bytes(b"first")
    key.write_bytes(b"first key")
    recipe = Recipe(targets=(DeployTarget(kind=TargetKind.KEY, path=str(key)),
                             DeployTarget(kind=TargetKind.FULLCHAIN, path=str(cert))))
    one, two = _material(), _material()
    a = deploy(one, recipe, location="file://c", stamp="20260101T000000Z")
    b = deploy(two, recipe, location="file://c", stamp="20260101T000000Z")
    assert a.ok
    assert b.ok
    contents = {Path(p).read_bytes() for p in (*a.backups, *b.backups)}
    assert contents == {b"first", b"first key", one.fullchain_pem(), one.key_pem}
    # In the backup directory the file sweep skips (issue 11), stamped, never overwritten.
    assert all(Path(p).parent == tmp_path / ".certwarden-backup"
               and Path(p).name.startswith(("c.pem.20260101T000000Z", "k.pem.20260101T000000Z"))
               for p in (*a.backups, *b.backups))
