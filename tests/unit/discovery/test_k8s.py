"""Kubernetes discovery: from kubectl dumps, and through the official client.

No cluster runs here. The API path talks to a local HTTP server that answers the two list
endpoints with recorded-shape JSON (pagination with ``continue`` tokens included). That
server is a FAKE of the Kubernetes API — the one fake the project allows; everything else
(the `kubernetes` client, kubeconfig loading, HTTP, parsing) is real.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certwarden.cli import main
from certwarden.discovery.k8s import read_cluster, read_dump
from certwarden.errors import ConnectError, UsageError
from certwarden.records import Outcome as K8sOutcome  # one outcome record for every source
from certwarden.records import OutcomeStatus as K8sStatus
from certwarden.records import Sighting
from certwarden.store.inventory import Inventory
from discovery_support import Issued, issue


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def estate() -> dict[str, Issued]:
    ca = issue("cluster-ca", ca=True)
    return {"ca": ca, "web": issue("web.default.svc", issuer=ca),
            "p12": issue("payments.svc"), "other": issue("unrelated.test")}


def objects(e: dict[str, Issued]) -> list[dict[str, Any]]:
    p12 = pkcs12.serialize_key_and_certificates(
        b"payments", e["p12"].key, e["p12"].cert, None,
        serialization.BestAvailableEncryption(b"kspass"))
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": "web-tls", "namespace": "default"},
         "data": {"tls.crt": b64(e["web"].pem + e["ca"].pem), "tls.key": b64(e["web"].key_pem()),
                  "ca.crt": b64(e["ca"].pem)}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "payments-keystore", "namespace": "pay"},
         "data": {"keystore.p12": b64(p12), "keystore-password": b64(b"kspass\n"),
                  "config.json": b64(b'{"a": 1}')}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
         "metadata": {"name": "default-token", "namespace": "default"},
         "data": {"token": b64(b"eyJhbGciOi...")}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "broken", "namespace": "default"},
         "data": {"cert.pem": b64(b"-----BEGIN CERTIFICATE-----\nAAAA\n"
                                  b"-----END CERTIFICATE-----\n")}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "kube-root-ca.crt", "namespace": "pay"},
         "data": {"ca.crt": e["ca"].pem.decode()}},
    ]


def _check(results: list[Sighting | K8sOutcome], e: dict[str, Issued], ctx: str) -> None:
    sightings = [r for r in results if isinstance(r, Sighting)]
    got = sorted((s.location.uri, s.position, s.certificate.sha256) for s in sightings)
    assert got == sorted([
        (f"k8s://{ctx}/default/web-tls#tls.crt", 0, e["web"].record.sha256),
        (f"k8s://{ctx}/default/web-tls#tls.crt", 1, e["ca"].record.sha256),
        (f"k8s://{ctx}/default/web-tls#ca.crt", 0, e["ca"].record.sha256),
        (f"k8s://{ctx}/pay/payments-keystore#keystore.p12", 0, e["p12"].record.sha256),
        (f"k8s://{ctx}/pay/configmap/kube-root-ca.crt#ca.crt", 0, e["ca"].record.sha256),
    ])
    keys = {(s.location.uri, s.position): s.key for s in sightings}
    web_key = keys[(f"k8s://{ctx}/default/web-tls#tls.crt", 0)]
    assert web_key is not None
    assert (web_key.path, web_key.encrypted) == (f"k8s://{ctx}/default/web-tls#tls.key", False)
    assert keys[(f"k8s://{ctx}/default/web-tls#tls.crt", 1)] is None
    p12_key = keys[(f"k8s://{ctx}/pay/payments-keystore#keystore.p12", 0)]
    assert p12_key is not None
    assert p12_key.encrypted
    broken = [r for r in results if isinstance(r, K8sOutcome) and r.status != K8sStatus.OK]
    assert [(b.location, b.status) for b in broken] == [
        (f"k8s://{ctx}/default/broken#cert.pem", K8sStatus.BROKEN)]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_kubectl_dump(tmp_path: Path, estate: dict[str, Issued], fmt: str) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
           "items": objects(estate)}
    path = tmp_path / f"dump.{fmt}"
    path.write_text(yaml.safe_dump(doc) if fmt == "yaml" else json.dumps(doc, indent=4))
    _check(list(read_dump(str(path), context="prod")), estate, "prod")


@pytest.mark.parametrize(("content", "message"), [
    ("", "no Secret or ConfigMap"),
    ("{not json", "not a kubectl JSON or YAML dump"),
    ("- a\n- b\n", "top level is not an object"),
    ("kind: Pod\nmetadata: {name: x}\n", "no Secret or ConfigMap"),
])
def test_bad_dumps(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "dump.yaml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        list(read_dump(str(path)))


class FakeKubeAPI(BaseHTTPRequestHandler):
    """FAKE Kubernetes API server: two list endpoints, paginated, recorded-shape JSON."""

    pages: ClassVar[dict[str, list[list[dict[str, Any]]]]] = {}
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.seen.append(self.path)
        query = parse_qs(url.query)
        kind = url.path.rsplit("/", 1)[-1]
        ns = url.path.split("/namespaces/")[1].split("/")[0] if "/namespaces/" in url.path \
            else None
        pages = self.pages.get(kind)
        if pages is None:
            self.send_response(404)
            self.end_headers()
            return
        index = int(query.get("continue", ["0"])[0])
        items = [dict(i) for i in pages[index]
                 if ns is None or i["metadata"]["namespace"] == ns]
        for i in items:
            i.pop("kind", None)  # list responses carry no kind per item
        meta = {"resourceVersion": "1234"}
        if index + 1 < len(pages):
            meta["continue"] = str(index + 1)
        body = json.dumps({"kind": "SecretList" if kind == "secrets" else "ConfigMapList",
                           "apiVersion": "v1", "metadata": meta, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def kubeconfig(tmp_path: Path, estate: dict[str, Issued]) -> Iterator[Path]:
    objs = objects(estate)
    secrets = [o for o in objs if o["kind"] == "Secret"]
    FakeKubeAPI.pages = {"secrets": [secrets[:2], secrets[2:]],
                         "configmaps": [[o for o in objs if o["kind"] == "ConfigMap"]]}
    FakeKubeAPI.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKubeAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "kind-test",
           "clusters": [{"name": "test", "cluster": {
               "server": f"http://127.0.0.1:{server.server_address[1]}"}}],
           "users": [{"name": "tester", "user": {"token": "not-a-real-token"}}],
           "contexts": [{"name": "kind-test", "context": {"cluster": "test", "user": "tester"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    yield path
    server.shutdown()
    server.server_close()


def test_api_paginated(kubeconfig: Path, estate: dict[str, Issued]) -> None:
    results = list(read_cluster(kubeconfig=str(kubeconfig), page_size=2))
    _check(results, estate, "kind-test")
    secret_calls = [p for p in FakeKubeAPI.seen if p.startswith("/api/v1/secrets")]
    assert len(secret_calls) == 2
    assert "continue=1" in secret_calls[1]
    assert all("limit=2" in p for p in secret_calls)


def test_api_one_namespace_into_the_inventory(kubeconfig: Path, tmp_path: Path,
                                              estate: dict[str, Issued],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'inv.db'}"
    assert main(["--db", db, "discover", "k8s", "--kubeconfig", str(kubeconfig),
                 "--namespace", "pay"]) == 0
    assert "k8s scan 1: 2 certificate(s)" in capsys.readouterr().out
    assert all("/namespaces/pay/" in p for p in FakeKubeAPI.seen)
    with Inventory.open(db) as inv:
        assert sorted(s.location.uri for s in inv.sightings()) == [
            "k8s://kind-test/pay/configmap/kube-root-ca.crt#ca.crt",
            "k8s://kind-test/pay/payments-keystore#keystore.p12"]


def test_api_unreachable_or_bad_kubeconfig(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           kubeconfig: Path) -> None:
    FakeKubeAPI.pages = {}  # every list is a 404 now
    with pytest.raises(ConnectError, match="HTTP 404"):
        list(read_cluster(kubeconfig=str(kubeconfig)))
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    assert main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "discover", "k8s",
                 "--kubeconfig", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("certwarden: error: kubeconfig")
