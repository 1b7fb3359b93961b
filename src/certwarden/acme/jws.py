"""JWS as RFC 8555 §6.2 uses it: flattened JSON, protected header only, an algorithm allowlist.

``parse`` checks the shape (and refuses ``none``, HMAC and anything outside ``ALLOWED_ALGS``);
``verify`` checks the signature with joserfc against a JWK. Which key (``jwk`` or ``kid``)
is acceptable for which resource is the caller's rule, since only it knows the resource.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from joserfc import jws as jose_jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey
from joserfc.registry import HeaderParameter

from certwarden.acme.problems import AcmeProblem, ProblemType, malformed

ALLOWED_ALGS = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
EAB_ALGS = ("HS256", "HS384", "HS512")  # HMAC only inside External Account Binding (§7.3.4)
# RSA below 2048 bits is refused (CA/B Forum minimum); curves per algorithm so ES256 cannot
# be paired with a P-384 key and so on.
MIN_RSA_BITS = 2048
_CURVE_FOR = {"ES256": "P-256", "ES384": "P-384"}



def b64d(text: str, what: str) -> bytes:
    if not isinstance(text, str) or "=" in text or "+" in text or "/" in text:
        raise malformed(f"{what} is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise malformed(f"{what} is not base64url") from None


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# joserfc refuses header names it does not know; RFC 8555 adds "url" and "nonce" (§6.4-6.5).
_ACME_HEADERS = {"url": HeaderParameter("ACME request URL", "str"),
                 "nonce": HeaderParameter("ACME replay nonce", "str")}
_REGISTRIES = {alg: jose_jws.JWSRegistry(header_registry=_ACME_HEADERS, algorithms=[alg])
               for alg in (*ALLOWED_ALGS, *EAB_ALGS)}
for _registry in _REGISTRIES.values():
    # joserfc caps headers at 512 bytes; a 4096-bit RSA "jwk" header alone is ~750.
    _registry.max_header_length = 8192


@dataclass(frozen=True, slots=True, kw_only=True)
class JwsMessage:
    """One flattened JWS, shape-checked but not yet verified."""

    protected: Mapping[str, Any]
    alg: str
    url: str | None
    nonce: str | None
    kid: str | None
    jwk: Mapping[str, Any] | None
    payload: bytes  # b"" means POST-as-GET
    raw_protected: str
    raw_payload: str
    raw_signature: str

    @property
    def is_post_as_get(self) -> bool:
        return self.raw_payload == ""

    def payload_json(self) -> dict[str, Any]:
        if self.is_post_as_get:
            raise malformed("this resource needs a JSON payload, not POST-as-GET")
        try:
            doc = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting is malformed too
            raise malformed("payload is not JSON") from None
        if not isinstance(doc, dict):
            raise malformed("payload is not a JSON object")
        return doc


def parse(body: bytes | str | Mapping[str, Any], *, algs: tuple[str, ...] = ALLOWED_ALGS,
          outer: bool = True) -> JwsMessage:
    """Shape checks of §6.2: flattened JSON, no unprotected header, an allowed ``alg``,
    exactly one of ``jwk``/``kid``; ``url`` and ``nonce`` present when ``outer``."""
    if isinstance(body, Mapping):
        doc: Any = body
    else:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting is malformed too
            raise malformed("request body is not JSON") from None
    if not isinstance(doc, dict):
        raise malformed("request body is not a flattened JWS JSON object")
    if "header" in doc:
        raise malformed("JWS unprotected header is not allowed")
    if "signatures" in doc:
        raise malformed("JWS general serialization (several signatures) is not allowed")
    for part in ("protected", "payload", "signature"):
        if not isinstance(doc.get(part), str):
            raise malformed(f"JWS has no {part!r} string")
    raw_protected, raw_payload, raw_sig = doc["protected"], doc["payload"], doc["signature"]
    try:
        protected = json.loads(b64d(raw_protected, "protected header"))
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting is malformed too
        raise malformed("protected header is not JSON") from None
    if not isinstance(protected, dict):
        raise malformed("protected header is not a JSON object")
    alg = protected.get("alg")
    if not isinstance(alg, str) or alg not in algs:
        raise AcmeProblem(ProblemType.BAD_SIGNATURE_ALGORITHM,
                          f"JWS algorithm {alg!r} is not accepted",
                          extra={"algorithms": list(algs)})
    jwk, kid = protected.get("jwk"), protected.get("kid")
    if (jwk is None) == (kid is None):
        raise malformed("JWS protected header needs exactly one of 'jwk' and 'kid'")
    if jwk is not None and not isinstance(jwk, dict):
        raise malformed("'jwk' is not a JSON object")
    if kid is not None and not isinstance(kid, str):
        raise malformed("'kid' is not a string")
    url, nonce = protected.get("url"), protected.get("nonce")
    if (outer or url is not None) and not isinstance(url, str):
        raise AcmeProblem(ProblemType.UNAUTHORIZED, "JWS protected header has no 'url'")
    if outer and not isinstance(nonce, str):
        raise AcmeProblem(ProblemType.BAD_NONCE, "JWS protected header has no 'nonce'")
    if not outer and nonce is not None:
        raise malformed("inner JWS must not carry a nonce")
    if "crit" in protected:
        raise malformed("JWS 'crit' header is not supported")
    payload = b64d(raw_payload, "payload") if raw_payload else b""
    b64d(raw_sig, "signature")
    return JwsMessage(protected=protected, alg=alg, url=url, nonce=nonce, kid=kid, jwk=jwk,
                      payload=payload, raw_protected=raw_protected, raw_payload=raw_payload,
                      raw_signature=raw_sig)


def check_public_jwk(jwk: Mapping[str, Any], alg: str | None = None) -> None:
    """An acceptable account key: public only, strong enough, matching ``alg`` if given."""
    kty = jwk.get("kty")
    if any(k in jwk for k in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, "JWK contains private key material")
    if kty == "RSA":
        n = b64d(str(jwk.get("n", "")), "RSA modulus")
        bits = int.from_bytes(n, "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, f"RSA key of {bits} bits is too small")
        if alg is not None and alg not in ("RS256", "PS256"):
            raise AcmeProblem(ProblemType.BAD_SIGNATURE_ALGORITHM, f"{alg} does not fit an RSA key")
    elif kty == "EC":
        crv = jwk.get("crv")
        if crv not in ("P-256", "P-384"):
            raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, f"EC curve {crv!r} is not accepted")
        if alg is not None and _CURVE_FOR.get(alg) != crv:
            raise AcmeProblem(ProblemType.BAD_SIGNATURE_ALGORITHM,
                              f"{alg} does not fit a {crv} key")
    elif kty == "OKP":
        if jwk.get("crv") != "Ed25519":
            raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, "only Ed25519 OKP keys are accepted")
        if alg is not None and alg != "EdDSA":
            raise AcmeProblem(ProblemType.BAD_SIGNATURE_ALGORITHM, f"{alg} does not fit Ed25519")
    else:
        raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, f"key type {kty!r} is not accepted")
    _import(json.dumps(dict(jwk), sort_keys=True))  # must be a readable key, too


@lru_cache(maxsize=4096)
def _import(jwk_json: str) -> ECKey | RSAKey | OKPKey:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # joserfc warns on weak keys: refuse them instead
            key = JWKRegistry.import_key(json.loads(jwk_json))
    except (JoseError, ValueError, TypeError, KeyError, Warning):
        raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, "JWK cannot be read") from None
    if not isinstance(key, ECKey | RSAKey | OKPKey):
        raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, "JWK is not an asymmetric key")
    return key


def verify(msg: JwsMessage, jwk: Mapping[str, Any]) -> None:
    """Check the signature of ``msg`` with ``jwk``; raise ``malformed`` when it fails."""
    check_public_jwk(jwk, msg.alg)
    key = _import(json.dumps(dict(jwk), sort_keys=True))
    compact = f"{msg.raw_protected}.{msg.raw_payload}.{msg.raw_signature}"
    with warnings.catch_warnings():
        # joserfc flags the "EdDSA" name as deprecated by RFC 9864; RFC 8555 clients send it.
        warnings.simplefilter("ignore")
        try:
            jose_jws.deserialize_compact(compact, key, registry=_REGISTRIES[msg.alg])
        except (JoseError, ValueError, TypeError):
            raise malformed("JWS signature does not verify") from None


def verify_hmac(msg: JwsMessage, secret: bytes) -> None:
    """External Account Binding: the inner JWS is MAC'd with the operator's key."""
    compact = f"{msg.raw_protected}.{msg.raw_payload}.{msg.raw_signature}"
    try:
        jose_jws.deserialize_compact(compact, OctKey.import_key(secret),
                                     registry=_REGISTRIES[msg.alg])
    except (JoseError, ValueError, TypeError):
        raise AcmeProblem(ProblemType.UNAUTHORIZED,
                          "external account binding MAC does not verify") from None


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint (base64url), the account key's identity."""
    return str(_import(json.dumps(dict(jwk), sort_keys=True)).thumbprint())


def canonical_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """Only the public members that define the key (what we store and compare)."""
    members = {"RSA": ("kty", "n", "e"), "EC": ("kty", "crv", "x", "y"), "OKP": ("kty", "crv", "x")}
    keep = members.get(str(jwk.get("kty")), ())
    return {k: jwk[k] for k in keep if k in jwk}
