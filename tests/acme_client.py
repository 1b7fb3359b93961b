"""A small async ACME client (httpx): the friendly client of our tests and the load client
of ``bench/acme.py`` (which puts ``tests/`` on its path). ``post`` lets a test bend any
header to play a hostile client. Not part of the product: certwarden is the server.

Account keys are ECDSA P-256 (ES256) unless another key is given; signatures are made with
cryptography directly (joserfc is only needed to verify).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from certwarden.acme.jws import b64e, thumbprint
from certwarden.errors import CertwardenError

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
CsrKey = SigningKey | ed448.Ed448PrivateKey  # a certificate key may be one JWS cannot use


class AcmeClientError(CertwardenError):
    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {problem.get('type')}: {problem.get('detail')}")
        self.status = status
        self.problem = dict(problem)

    @property
    def type(self) -> str:
        return str(self.problem.get("type", "")).rsplit(":", 1)[-1]


def public_jwk(key: SigningKey) -> dict[str, str]:
    pub = key.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        nums = pub.public_numbers()
        size = (pub.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[pub.curve.key_size]
        return {"kty": "EC", "crv": crv, "x": b64e(nums.x.to_bytes(size, "big")),
                "y": b64e(nums.y.to_bytes(size, "big"))}
    if isinstance(pub, rsa.RSAPublicKey):
        rn = pub.public_numbers()
        return {"kty": "RSA", "n": b64e(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big")),
                "e": b64e(rn.e.to_bytes((rn.e.bit_length() + 7) // 8, "big"))}
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64e(raw)}


def default_alg(key: SigningKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    return "EdDSA"


def sign(key: SigningKey, alg: str, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        h: hashes.HashAlgorithm = {"ES256": hashes.SHA256(), "ES384": hashes.SHA384()}.get(
            alg, hashes.SHA512())
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(h)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if isinstance(key, rsa.RSAPrivateKey):
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            if alg == "PS256" else padding.PKCS1v15())
        return key.sign(data, pad, hashes.SHA256())
    return key.sign(data)


def jws_object(key: SigningKey, protected: Mapping[str, Any],
               payload: bytes | None) -> dict[str, str]:
    """A flattened JWS; ``payload=None`` is POST-as-GET (empty payload)."""
    p64 = b64e(json.dumps(dict(protected)).encode())
    pl64 = "" if payload is None else b64e(payload)
    sig = sign(key, str(protected.get("alg", default_alg(key))), f"{p64}.{pl64}".encode())
    return {"protected": p64, "payload": pl64, "signature": b64e(sig)}


def make_csr(names: list[str], key: CsrKey | None = None) -> tuple[bytes, CsrKey]:
    import ipaddress

    key = key or ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
           .add_extension(x509.SubjectAlternativeName(sans), critical=False)
           .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
                 else hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.DER), key


@dataclass(slots=True)
class Response:
    status: int
    headers: httpx.Headers
    body: Any  # parsed JSON, or bytes for certificates

    @property
    def location(self) -> str:
        return str(self.headers.get("location", ""))


class AcmeClient:
    def __init__(self, http: httpx.AsyncClient, directory_url: str, *,
                 key: SigningKey | None = None, poll_interval: float = 0.05) -> None:
        self.http = http
        self.directory_url = directory_url
        self.key: SigningKey = key or ec.generate_private_key(ec.SECP256R1())
        self.kid: str | None = None
        self.directory: dict[str, Any] = {}
        self.poll_interval = poll_interval
        self._nonces: list[str] = []

    @property
    def thumbprint(self) -> str:
        return thumbprint(public_jwk(self.key))

    def key_authorization(self, token: str) -> str:
        return f"{token}.{self.thumbprint}"

    async def load_directory(self) -> dict[str, Any]:
        if not self.directory:
            r = await self.http.get(self.directory_url)
            r.raise_for_status()
            self.directory = r.json()
        return self.directory

    async def nonce(self) -> str:
        if self._nonces:
            return self._nonces.pop()
        r = await self.http.head((await self.load_directory())["newNonce"])
        return r.headers["replay-nonce"]

    async def post(self, url: str, payload: Mapping[str, Any] | bytes | None, *,
                   use_jwk: bool = False, key: SigningKey | None = None,
                   header_overrides: Mapping[str, Any] | None = None,
                   retry_bad_nonce: bool = True, raw_body: bytes | None = None,
                   content_type: str = "application/jose+json") -> Response:
        """Sign and POST; raise ``AcmeClientError`` on a problem document."""
        for attempt in range(3):
            key_ = key or self.key
            protected: dict[str, Any] = {"alg": default_alg(key_), "nonce": await self.nonce(),
                                         "url": url}
            if use_jwk or self.kid is None:
                protected["jwk"] = public_jwk(key_)
            else:
                protected["kid"] = self.kid
            for k, v in (header_overrides or {}).items():
                if v is None:
                    protected.pop(k, None)
                else:
                    protected[k] = v
            data = payload if isinstance(payload, bytes | None) else json.dumps(payload).encode()
            body = raw_body if raw_body is not None else json.dumps(
                jws_object(key_, protected, data)).encode()
            r = await self.http.post(url, content=body, headers={"Content-Type": content_type})
            if "replay-nonce" in r.headers:
                self._nonces.append(r.headers["replay-nonce"])
            ctype = r.headers.get("content-type", "")
            if r.status_code >= 400:
                problem = r.json() if "json" in ctype else {"detail": r.text}
                err = AcmeClientError(r.status_code, problem)
                if err.type == "badNonce" and retry_bad_nonce and attempt < 2:
                    continue
                raise err
            parsed: Any = r.json() if "json" in ctype else r.content
            return Response(status=r.status_code, headers=r.headers, body=parsed)
        raise AssertionError("unreachable")  # pragma: no cover

    # the happy path -----------------------------------------------------------------------
    async def register(self, *, contact: list[str] | None = None, **extra: Any) -> Response:
        d = await self.load_directory()
        payload: dict[str, Any] = {"termsOfServiceAgreed": True, **extra}
        if contact is not None:
            payload["contact"] = contact
        r = await self.post(d["newAccount"], payload, use_jwk=True)
        self.kid = r.location
        return r

    async def new_order(self, names: list[str], **extra: Any) -> Response:
        d = await self.load_directory()
        idents = [{"type": "ip" if _is_ip(n) else "dns", "value": n} for n in names]
        return await self.post(d["newOrder"], {"identifiers": idents, **extra})

    async def get(self, url: str) -> Response:
        return await self.post(url, None)

    async def poll(self, url: str, *, until: tuple[str, ...], timeout: float = 10.0) -> Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            r = await self.get(url)
            if r.body["status"] in until:
                return r
            if r.body["status"] == "invalid" or loop.time() > deadline:
                raise AcmeClientError(0, {"type": "poll", "detail": f"{url} is "
                                          f"{r.body['status']}: {r.body.get('error')}"})
            await asyncio.sleep(self.poll_interval)

    async def issue(self, names: list[str], *, answer: Any, challenge_type: str = "http-01",
                    csr_key: CsrKey | None = None, **order_extra: Any) -> tuple[str, Response]:
        """Full order: ``answer(token, key_authorization, name)`` publishes each response.
        Returns (PEM chain, final order)."""
        order = await self.new_order(names, **order_extra)
        order_url = order.location
        for authz_url in order.body["authorizations"]:
            authz = await self.get(authz_url)
            if authz.body["status"] == "valid":
                continue
            ch = next(c for c in authz.body["challenges"] if c["type"] == challenge_type)
            ka = self.key_authorization(ch["token"])
            await _maybe_await(answer(ch["token"], ka, authz.body["identifier"]["value"]))
            await self.post(ch["url"], {})
            await self.poll(authz_url, until=("valid",))
        await self.poll(order_url, until=("ready", "valid"))
        csr, _ = make_csr(names, csr_key)
        fin = await self.post(order.body["finalize"], {"csr": b64e(csr)})
        final = fin if fin.body["status"] == "valid" else await self.poll(
            order_url, until=("valid",))
        cert = await self.get(final.body["certificate"])
        return cert.body.decode("ascii"), final


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
