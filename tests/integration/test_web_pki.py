"""The PKI routes through the real app (FastAPI TestClient over httpx) on a real database."""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from fastapi import FastAPI

from certwarden.ca import Authority, IssuedChain
from certwarden.ca.hierarchy import init_ca
from certwarden.ca.publish import Publisher
from certwarden.store.ca_ledger import SqlLedger
from certwarden.web.app import build_app

PASS = b"web"


class TestClient:
    """The app through httpx's ASGI transport (each call in its own event loop)."""

    __test__ = False

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await c.request(method, url, **kw)

        return asyncio.run(go())

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)
SHA1 = hashes.SHA1  # RFC 5019 CertIDs


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, Authority]]:
    ledger = SqlLedger.open(f"sqlite:///{tmp_path / 'web.db'}")
    init_ca(ledger, name="Web CA", key_dir=tmp_path / "keys", passphrase=PASS)
    authority = Authority.open(ledger, passphrase=lambda: PASS)
    publisher = Publisher.open(ledger, passphrase=lambda: PASS, poll_seconds=0.0)
    yield TestClient(build_app(publisher=publisher)), authority
    ledger.close()


def _leaf(authority: Authority) -> IssuedChain:
    key = ec.generate_private_key(ec.SECP256R1())
    return authority.issue(public_key=key.public_key(), names=["web.internal"])


def _req(chain: IssuedChain, nonce: bytes | None = None) -> bytes:
    leaf = x509.load_der_x509_certificate(chain.leaf_der)
    issuer = x509.load_der_x509_certificate(chain.chain_der[0])
    b = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, SHA1())
    if nonce:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


def test_crl_route_serves_the_current_crl(setup: tuple[TestClient, Authority]) -> None:
    client, authority = setup
    chain = _leaf(authority)
    first = client.get(f"/crl/{authority.issuer.name}.crl")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/pkix-crl"
    assert "max-age=" in first.headers["cache-control"]
    crl = x509.load_der_x509_crl(first.content)
    assert len(crl) == 0
    authority.revoke(chain.serial, "cessationOfOperation")
    crl2 = x509.load_der_x509_crl(client.get(f"/crl/{authority.issuer.name}.crl").content)
    assert crl2.get_revoked_certificate_by_serial_number(int(chain.serial, 16)) is not None
    n1 = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    n2 = crl2.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert n2 > n1
    root = client.get(f"/crl/{authority.issuer.parent}.crl")
    assert root.status_code == 200


def test_ocsp_post_and_get_with_rfc5019_caching(setup: tuple[TestClient, Authority]) -> None:
    client, authority = setup
    chain = _leaf(authority)
    post = client.post("/ocsp", content=_req(chain),
                       headers={"content-type": "application/ocsp-request"})
    assert post.status_code == 200
    assert post.headers["content-type"] == "application/ocsp-response"
    cc = post.headers["cache-control"]
    assert "max-age=" in cc
    assert "public" in cc
    assert {"etag", "last-modified", "expires"} <= set(post.headers)
    assert ocsp.load_der_ocsp_response(post.content).certificate_status \
        is ocsp.OCSPCertStatus.GOOD
    encoded = urllib.parse.quote(base64.b64encode(_req(chain)).decode(), safe="")
    get = client.get(f"/ocsp/{encoded}")
    assert get.status_code == 200
    assert get.content == post.content  # the same pre-signed answer
    authority.revoke(chain.serial, "keyCompromise")
    after = ocsp.load_der_ocsp_response(client.post("/ocsp", content=_req(chain)).content)
    assert after.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert after.revocation_reason is x509.ReasonFlags.key_compromise


def test_nonce_answers_are_not_cacheable(setup: tuple[TestClient, Authority]) -> None:
    client, authority = setup
    resp = client.post("/ocsp", content=_req(_leaf(authority), nonce=b"n" * 16))
    assert resp.headers["cache-control"] == "no-store"
    parsed = ocsp.load_der_ocsp_response(resp.content)
    assert parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16


def test_errors_are_problem_json_or_ocsp_errors(setup: tuple[TestClient, Authority]) -> None:
    client, _ = setup
    missing = client.get("/crl/nope.crl")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["detail"] == "no issuer named 'nope'"
    big = client.post("/ocsp", content=b"x" * 70000)
    assert big.status_code == 400
    assert big.json()["detail"] == "OCSP request too large"
    junk = client.post("/ocsp", content=b"junk")
    assert ocsp.load_der_ocsp_response(junk.content).response_status \
        is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    bad_get = client.get("/ocsp/%%%not-base64")
    assert ocsp.load_der_ocsp_response(bad_get.content).response_status \
        is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    unknown_route = client.get("/nothing")
    assert unknown_route.status_code == 404
    assert unknown_route.headers["content-type"] == "application/problem+json"
