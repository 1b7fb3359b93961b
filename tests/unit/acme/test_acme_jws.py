"""JWS shape and signature checks, nonces, rate limits, problem documents."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from acme_client import jws_object, public_jwk
from certwarden.acme import jws
from certwarden.acme.limits import RateLimit, RateLimiter
from certwarden.acme.nonces import NoncePool
from certwarden.acme.problems import STATUS, AcmeProblem, ProblemType


def signed(key: object, **protected: object) -> bytes:
    header = {"alg": "ES256", "nonce": "n", "url": "https://x/acme/new-order", **protected}
    return json.dumps(jws_object(key, header, b'{"a": 1}')).encode()  # type: ignore[arg-type]


def test_parse_and_verify_each_allowed_algorithm() -> None:
    keys = {"ES256": ec.generate_private_key(ec.SECP256R1()),
            "ES384": ec.generate_private_key(ec.SECP384R1()),
            "RS256": rsa.generate_private_key(65537, 2048),
            "PS256": rsa.generate_private_key(65537, 2048),
            "EdDSA": ed25519.Ed25519PrivateKey.generate()}
    assert set(keys) == set(jws.ALLOWED_ALGS)
    for alg, key in keys.items():
        msg = jws.parse(signed(key, alg=alg, jwk=public_jwk(key)))  # type: ignore[arg-type]
        jws.verify(msg, msg.jwk or {})
        assert msg.payload_json() == {"a": 1}


def test_tampered_payload_fails_verification() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    doc = json.loads(signed(key, jwk=public_jwk(key)))
    doc["payload"] = jws.b64e(b'{"a": 2}')
    msg = jws.parse(json.dumps(doc))
    with pytest.raises(AcmeProblem) as err:
        jws.verify(msg, public_jwk(key))
    assert err.value.type == ProblemType.MALFORMED


@pytest.mark.parametrize(("header", "expected"), [
    ({"alg": "none"}, ProblemType.BAD_SIGNATURE_ALGORITHM),
    ({"alg": "HS256"}, ProblemType.BAD_SIGNATURE_ALGORITHM),
    ({"alg": None}, ProblemType.BAD_SIGNATURE_ALGORITHM),
    ({"kid": "https://x/acme/account/1"}, ProblemType.MALFORMED),  # both kid and jwk
    ({"jwk": None}, ProblemType.MALFORMED),  # neither
    ({"url": None}, ProblemType.UNAUTHORIZED),
    ({"nonce": None}, ProblemType.BAD_NONCE),
    ({"crit": ["b64"]}, ProblemType.MALFORMED),
])
def test_header_rules(header: dict[str, object], expected: ProblemType) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    base = {"alg": "ES256", "nonce": "n", "url": "u", "jwk": public_jwk(key)}
    for k, v in header.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    body = {"protected": jws.b64e(json.dumps(base).encode()), "payload": "", "signature": "AA"}
    with pytest.raises(AcmeProblem) as err:
        jws.parse(json.dumps(body))
    assert err.value.type == expected


def test_key_checks() -> None:
    with pytest.raises(AcmeProblem) as err:
        jws.check_public_jwk(public_jwk(ec.generate_private_key(ec.SECP521R1())))
    assert err.value.type == ProblemType.BAD_PUBLIC_KEY
    priv = {**public_jwk(ec.generate_private_key(ec.SECP256R1())), "d": "AAAA"}
    with pytest.raises(AcmeProblem) as err:
        jws.check_public_jwk(priv)
    assert err.value.type == ProblemType.BAD_PUBLIC_KEY
    with pytest.raises(AcmeProblem) as err:
        jws.check_public_jwk({"kty": "oct", "k": "AAAA"})
    assert err.value.type == ProblemType.BAD_PUBLIC_KEY


def test_thumbprint_matches_rfc7638_example() -> None:
    # RFC 7638 §3.1 example key and its published thumbprint.
    jwk = {"kty": "RSA", "e": "AQAB", "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
        "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWh"
        "AI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")}
    assert jws.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.dictionaries(
    st.sampled_from(["protected", "payload", "signature", "header"]),
    st.one_of(st.text(max_size=40), st.integers(), st.none()), max_size=4)))
def test_parse_never_raises_anything_but_a_problem(raw: bytes | dict[str, object]) -> None:
    body = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    problem: AcmeProblem | None = None
    try:
        jws.parse(body)
    except AcmeProblem as exc:
        problem = exc
    if problem is not None:
        assert problem.status == STATUS[problem.type]


def test_nonces_single_use_and_expire() -> None:
    pool = NoncePool(ttl_seconds=0.05)
    n1, n2 = pool.issue(), pool.issue()
    pool.consume(n1)
    with pytest.raises(AcmeProblem) as err:
        pool.consume(n1)
    assert err.value.type == ProblemType.BAD_NONCE
    time.sleep(0.06)
    with pytest.raises(AcmeProblem) as err:
        pool.consume(n2)
    assert err.value.type == ProblemType.BAD_NONCE
    assert "expired" in err.value.detail
    small = NoncePool(capacity=3)
    first = small.issue()
    for _ in range(3):
        small.issue()
    assert len(small) == 3
    with pytest.raises(AcmeProblem) as err:
        small.consume(first)  # pushed out by the newer ones
    assert err.value.type == ProblemType.BAD_NONCE


def test_rate_limiter_refills() -> None:
    limiter = RateLimiter(RateLimit(per_second=20.0, burst=2), what="account")
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(AcmeProblem) as err:
        limiter.take("a")
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "1"
    limiter.take("b")  # another key has its own bucket
    time.sleep(0.06)
    limiter.take("a")


def test_every_problem_type_has_a_status_and_round_trips() -> None:
    for t in ProblemType:
        p = AcmeProblem(t, "why\nnot", identifier={"type": "dns", "value": "a"})
        doc = p.as_dict()
        assert doc["type"] == f"urn:ietf:params:acme:error:{t.value}"
        assert doc["detail"] == "why not"
        assert doc["status"] == STATUS[t]
        back = AcmeProblem.from_dict(doc)
        assert back.type == t
        assert back.status == p.status
