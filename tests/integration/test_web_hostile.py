"""A hostile client against the app ``certwarden serve`` runs (PKI + ACME routes), through httpx
on a real database: every refusal is an RFC 7807 problem document with the right status (or,
for OCSP, the protocol's own malformedRequest answer), never a 500 with a traceback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from fastapi import APIRouter, FastAPI

from certwarden.acme.authority import AuthorityIssuer, authority_profiles
from certwarden.ca import Authority, IssuedChain
from certwarden.ca.hierarchy import init_ca
from certwarden.ca.publish import Publisher
from certwarden.store.ca_ledger import SqlLedger
from certwarden.web.acme import acme_router, build_acme_server
from certwarden.web.app import build_app

PASS = b"hostile web"
JOSE = {"content-type": "application/jose+json"}
SHA1 = hashes.SHA1  # RFC 5019 CertIDs are SHA-1


class Client:
    """The app through httpx's ASGI transport; app errors come back as responses, as a real
    server would send them, instead of being re-raised into the test."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await c.request(method, url, **kw)

        return asyncio.run(go())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Client, Authority]]:
    db = f"sqlite:///{tmp_path / 'web.db'}"
    ledger = SqlLedger.open(db)
    init_ca(ledger, name="Hostile CA", key_dir=tmp_path / "keys", passphrase=PASS)
    authority = Authority.open(ledger, passphrase=lambda: PASS)
    publisher = Publisher.open(ledger, passphrase=lambda: PASS, poll_seconds=0.0)
    server = build_acme_server(db_url=db, issuer=AuthorityIssuer(
        authority, profiles=authority_profiles(authority)))
    yield Client(build_app(publisher=publisher, routers=[acme_router(server)])), authority
    server.close()
    ledger.close()


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in resp.text
    doc: dict[str, Any] = resp.json()
    assert doc["status"] == status
    assert doc["type"]
    assert doc["detail"]
    return doc


def _ocsp_status(resp: httpx.Response) -> ocsp.OCSPResponseStatus:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(resp.content).response_status


def _leaf(authority: Authority) -> IssuedChain:
    key = ec.generate_private_key(ec.SECP256R1())
    return authority.issue(public_key=key.public_key(), names=["hostile.internal"])


def _ocsp_request(chain: IssuedChain, nonce: bytes | None) -> bytes:
    leaf = x509.load_der_x509_certificate(chain.leaf_der)
    issuer = x509.load_der_x509_certificate(chain.chain_der[0])
    b = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, SHA1())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("path", [
    "/crl/..%2F..%2Fetc%2Fpasswd.crl",
    "/crl/../../etc/passwd.crl",
    "/crl/%2e%2e%2f%2e%2e%2fetc%2fpasswd.crl",
    "/crl/%00.crl",
    "/crl/" + "a" * 4000 + ".crl",
    "/crl/nope.crl",
    "/crl/hostile-ca",
    "/nowhere",
])
def test_crl_traversal_and_unknown_paths_are_404(served: tuple[Client, Authority],
                                                 path: str) -> None:
    client, _ = served
    resp = client.request("GET", path)
    _problem(resp, 404)
    assert "root:" not in resp.text  # nothing from outside the ledger is ever served


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/crl/hostile-ca.crl"), ("DELETE", "/crl/hostile-ca.crl"), ("PUT", "/ocsp"),
    ("GET", "/ocsp"), ("POST", "/ocsp/MAMCAQE="), ("DELETE", "/ocsp/MAMCAQE="),
    ("POST", "/healthz"), ("TRACE", "/healthz"),
])
def test_unknown_methods_are_405(served: tuple[Client, Authority], method: str,
                                 path: str) -> None:
    client, _ = served
    _problem(client.request(method, path), 405)


@pytest.mark.parametrize("encoded", [
    "", "!!!!", "%ZZ", "A" * 8000, base64.b64encode(b"\x30\x03\x02\x01\x01").decode(),
    base64.b64encode(b"\x30\x80" + b"\x30" * 500).decode(), "%2F%2F%2F",
])
def test_ocsp_get_garbage_is_malformed_request(served: tuple[Client, Authority],
                                               encoded: str) -> None:
    client, _ = served
    resp = client.request("GET", f"/ocsp/{encoded}")
    assert _ocsp_status(resp) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize("body", [b"", b"junk", b"\x30" * 100, b"\x30\x82\xff\xff" + b"\x00" * 9])
def test_ocsp_post_garbage_is_malformed_request(served: tuple[Client, Authority],
                                                body: bytes) -> None:
    client, _ = served
    resp = client.request("POST", "/ocsp", content=body,
                          headers={"content-type": "application/ocsp-request"})
    assert _ocsp_status(resp) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_oversized_ocsp_post_is_a_problem(served: tuple[Client, Authority]) -> None:
    client, _ = served
    resp = client.request("POST", "/ocsp", content=b"\x30" * (200 * 1024))
    assert "too large" in _problem(resp, 400)["detail"]


@pytest.mark.parametrize(("size", "ok"), [(1, True), (32, True), (33, False), (2000, False)])
def test_ocsp_nonce_length_is_bounded(served: tuple[Client, Authority], size: int,
                                      ok: bool) -> None:
    # RFC 8954 §2.1: 1..32 octets; a longer one would buy an uncached signature over
    # whatever the client sent.
    client, authority = served
    nonce = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    resp = client.request("POST", "/ocsp", content=_ocsp_request(_leaf(authority), nonce),
                          headers={"content-type": "application/ocsp-request"})
    status = _ocsp_status(resp)
    if not ok:
        assert status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        return
    assert status is ocsp.OCSPResponseStatus.SUCCESSFUL
    parsed = ocsp.load_der_ocsp_response(resp.content)
    assert parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert resp.headers["cache-control"] == "no-store"


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(("headers", "body", "status", "fragment"), [
    ({"content-type": "application/json"}, b"{}", 415, "Content-Type"),
    ({}, b"{}", 415, "Content-Type"),
    (JOSE, b"{", 400, "not JSON"),
    (JOSE, b"\xff\xfe", 400, "not JSON"),
    (JOSE, b"[]", 400, "flattened JWS"),
    (JOSE, b'{"protected":"!!","payload":"","signature":""}', 400, "protected"),
    (JOSE, json.dumps({"protected": _b64([1]), "payload": "", "signature": ""}).encode(),
     400, "not a JSON object"),
    (JOSE, json.dumps({"protected": _b64({"alg": "ES256", "jwk": 5, "nonce": "x",
                                          "url": "http://test/acme/new-account"}),
                       "payload": "", "signature": ""}).encode(), 400, "jwk"),
    (JOSE, b"[" * 60000, 400, "not JSON"),  # deeper than the recursion limit
    (JOSE, json.dumps({"protected": base64.urlsafe_b64encode(b"[" * 40000).decode(),
                       "payload": "", "signature": ""}).encode(), 400, "protected header"),
    (JOSE, b"x" * (70 * 1024), 413, "too large"),
    ({**JOSE, "content-length": "-1"}, b"{}", 413, "too large"),
])
def test_acme_bad_bodies_are_problems(served: tuple[Client, Authority], headers: dict[str, str],
                                      body: bytes, status: int, fragment: str) -> None:
    client, _ = served
    resp = client.request("POST", "/acme/new-account", content=body, headers=headers)
    doc = _problem(resp, status)
    assert doc["type"].startswith("urn:ietf:params:acme:error:")
    assert fragment in doc["detail"]
    assert resp.headers.get("replay-nonce")  # a client can retry without another round trip


@pytest.mark.parametrize(("method", "path", "status", "allow"), [
    ("POST", "/acme/directory", 405, "GET"),
    ("DELETE", "/acme/directory", 405, "GET"),
    ("PATCH", "/acme/new-nonce", 405, "GET, HEAD"),
    ("POST", "/acme/renewal-info/aaaa.bbbb", 405, "GET"),
    ("GET", "/acme/new-order", 405, "POST"),
    ("DELETE", "/acme/order/1", 405, "POST"),
    ("GET", "/acme/renewal-info/", 404, None),
    ("GET", "/acme/nothing-here", 404, None),
    ("POST", "/acme/" + "x" * 5000, 404, None),
])
def test_acme_wrong_methods_and_paths(served: tuple[Client, Authority], method: str, path: str,
                                      status: int, allow: str | None) -> None:
    client, _ = served
    resp = client.request(method, path)
    doc = _problem(resp, status)
    assert len(doc["detail"]) < 200  # the path is not echoed back at length
    assert resp.headers.get("allow") == allow


def test_a_bug_is_a_500_problem_without_traceback(served: tuple[Client, Authority]) -> None:
    client, _ = served
    broken = APIRouter()

    @broken.get("/broken")
    def _broken() -> None:
        raise RuntimeError("secret detail from deep inside")

    client.app.include_router(broken)
    resp = client.request("GET", "/broken")
    doc = _problem(resp, 500)
    assert "secret detail" not in resp.text
    assert doc["type"].endswith("internal-error")
