"""A hostile client against the ACME app: every refusal is a problem document with the right
ACME type and status, a fresh nonce, and nothing stored changes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from acme_client import AcmeClient, AcmeClientError, jws_object, public_jwk
from acme_support import AcmeEnv
from certwarden.acme.jws import b64e
from certwarden.acme.limits import RateLimit

pytestmark = pytest.mark.anyio


@pytest.fixture
def env(tmp_path: Path) -> Iterator[AcmeEnv]:
    with AcmeEnv(db_url=f"sqlite:///{tmp_path / 'acme.db'}").running() as e:
        yield e


@pytest.fixture
async def client(env: AcmeEnv) -> AsyncIterator[AcmeClient]:
    async with env.http_client() as http:
        c = env.acme_client(http)
        await c.register()
        yield c


async def refused(client: AcmeClient, url: str, payload: object = None, **kw: object
                  ) -> AcmeClientError:
    with pytest.raises(AcmeClientError) as err:
        await client.post(url, payload, retry_bad_nonce=False, **kw)  # type: ignore[arg-type]
    return err.value


def _b64(obj: object) -> str:
    return b64e(json.dumps(obj).encode())


async def test_alg_none_and_hmac_are_refused(env: AcmeEnv, client: AcmeClient) -> None:
    d = await client.load_directory()
    for alg in ("none", "HS256", "ES512", "RS1"):
        protected = {"alg": alg, "nonce": await client.nonce(), "url": d["newOrder"],
                     "kid": client.kid}
        body = {"protected": _b64(protected), "payload": _b64({"identifiers": []}),
                "signature": b64e(hmac.new(b"k", b"x", hashlib.sha256).digest()) if alg != "none"
                else ""}
        err = await refused(client, d["newOrder"], raw_body=json.dumps(body).encode())
        assert err.type == "badSignatureAlgorithm"
        assert err.status == 400
        assert "ES256" in err.problem["algorithms"]


async def test_nonces_are_single_use_and_must_exist(env: AcmeEnv, client: AcmeClient) -> None:
    d = await client.load_directory()
    nonce = await client.nonce()
    protected = {"alg": "ES256", "nonce": nonce, "url": d["newOrder"], "kid": client.kid}
    payload = json.dumps({"identifiers": [{"type": "dns", "value": "n.internal"}]}).encode()
    body = json.dumps(jws_object(client.key, protected, payload)).encode()
    first = await client.post(d["newOrder"], None, raw_body=body, retry_bad_nonce=False)
    assert first.status == 201
    replay = await refused(client, d["newOrder"], raw_body=body)
    assert replay.type == "badNonce"
    assert replay.status == 400
    forged = await refused(client, d["newOrder"], {"identifiers": []},
                           header_overrides={"nonce": "AAAAAAAAAAAAAAAAAAAAAA"})
    assert forged.type == "badNonce"
    missing = await refused(client, d["newOrder"], {"identifiers": []},
                            header_overrides={"nonce": None})
    assert missing.type == "badNonce"


async def test_url_header_must_be_the_request_url(env: AcmeEnv, client: AcmeClient) -> None:
    d = await client.load_directory()
    err = await refused(client, d["newOrder"], {"identifiers": []},
                        header_overrides={"url": d["newAccount"]})
    assert err.type == "unauthorized"
    assert err.status == 403
    err = await refused(client, d["newOrder"], {"identifiers": []}, header_overrides={"url": None})
    assert err.type == "unauthorized"


async def test_kid_and_jwk_rules(env: AcmeEnv, client: AcmeClient) -> None:
    d = await client.load_directory()
    idents = {"identifiers": [{"type": "dns", "value": "k.internal"}]}
    assert (await refused(client, d["newOrder"], idents, use_jwk=True)).type == "malformed"
    err = await refused(client, d["newAccount"], {}, header_overrides={"kid": client.kid})
    assert err.type == "malformed"  # a kid and a jwk both present (client adds jwk)
    err = await refused(client, d["newOrder"], idents,
                        header_overrides={"kid": "https://acme.test/acme/account/nobody"})
    assert err.type == "accountDoesNotExist"
    err = await refused(client, d["newOrder"], idents,
                        header_overrides={"kid": "https://elsewhere.test/acme/account/x"})
    assert err.type == "accountDoesNotExist"


async def test_signature_by_another_key_is_refused(env: AcmeEnv, client: AcmeClient) -> None:
    d = await client.load_directory()
    other = ec.generate_private_key(ec.SECP256R1())
    err = await refused(client, d["newOrder"],
                        {"identifiers": [{"type": "dns", "value": "s.internal"}]}, key=other)
    assert err.type == "malformed"
    assert "signature" in err.problem["detail"]


async def test_weak_and_mismatched_keys(env: AcmeEnv) -> None:
    async with env.http_client() as http:
        c = env.acme_client(http, key=rsa.generate_private_key(65537, 1024))  # noqa: S505 - the point
        with pytest.raises(AcmeClientError) as err:
            await c.register()
        assert err.value.type == "badPublicKey"
        c = env.acme_client(http, key=ec.generate_private_key(ec.SECP384R1()))
        with pytest.raises(AcmeClientError) as err:
            await c.post((await c.load_directory())["newAccount"], {}, use_jwk=True,
                         header_overrides={"alg": "ES256"})
        assert err.value.type == "badSignatureAlgorithm"


@pytest.mark.parametrize("make_key", [
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: rsa.generate_private_key(65537, 2048),
    ed25519.Ed25519PrivateKey.generate,
], ids=["ES384", "RS256", "EdDSA"])
async def test_every_allowed_algorithm_registers(env: AcmeEnv, make_key: object) -> None:
    async with env.http_client() as http:
        c = env.acme_client(http, key=make_key())  # type: ignore[operator]
        r = await c.register()
        assert r.status == 201
        order = await c.new_order(["alg.internal"])
        assert order.status == 201


async def test_ps256_signs_too(env: AcmeEnv) -> None:
    async with env.http_client() as http:
        key = rsa.generate_private_key(65537, 2048)
        c = env.acme_client(http, key=key)
        d = await c.load_directory()
        r = await c.post(d["newAccount"], {"termsOfServiceAgreed": True}, use_jwk=True,
                         header_overrides={"alg": "PS256"})
        assert r.status == 201


async def test_malformed_bodies(env: AcmeEnv, client: AcmeClient) -> None:
    d = await client.load_directory()
    for raw in (b"not json", b"[]", b'{"protected": 1}',
                json.dumps({"protected": "!!", "payload": "", "signature": ""}).encode()):
        err = await refused(client, d["newOrder"], raw_body=raw)
        assert err.type == "malformed"
        assert err.status == 400
    good = jws_object(client.key, {"alg": "ES256", "nonce": await client.nonce(),
                                   "url": d["newOrder"], "kid": client.kid}, b"{}")
    good["header"] = {"kid": "x"}  # type: ignore[assignment]
    err = await refused(client, d["newOrder"], raw_body=json.dumps(good).encode())
    assert err.type == "malformed"
    assert "unprotected" in err.problem["detail"]
    err = await refused(client, d["newOrder"], {}, content_type="application/json")
    assert err.status == 415
    err = await refused(client, d["newOrder"], raw_body=b"x" * 70_000)
    assert err.status == 413


async def test_problems_carry_a_fresh_nonce_and_problem_json(env: AcmeEnv,
                                                             client: AcmeClient) -> None:
    async with env.http_client() as http:
        r = await http.post("/acme/new-order", content=b"{}",
                            headers={"Content-Type": "application/jose+json"})
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["replay-nonce"]
    assert r.json()["type"].startswith("urn:ietf:params:acme:error:")


async def test_other_accounts_resources_are_invisible(env: AcmeEnv, client: AcmeClient) -> None:
    order = await client.new_order(["mine.internal"])
    async with env.http_client() as http:
        thief = env.acme_client(http)
        await thief.register()
        for url in (order.location, order.body["authorizations"][0]):
            with pytest.raises(AcmeClientError) as err:
                await thief.get(url)
            assert err.value.status == 404
        with pytest.raises(AcmeClientError) as err:
            await thief.get(client.kid or "")
        assert err.value.type == "unauthorized"


async def test_identifiers_are_checked(env: AcmeEnv, client: AcmeClient) -> None:
    d = await client.load_directory()
    bad = await refused(client, d["newOrder"],
                        {"identifiers": [{"type": "dns", "value": "bad_name!.internal"}]})
    assert bad.type == "rejectedIdentifier"
    bad = await refused(client, d["newOrder"],
                        {"identifiers": [{"type": "email", "value": "a@b.c"}]})
    assert bad.type == "unsupportedIdentifier"
    two = await refused(client, d["newOrder"], {"identifiers": [
        {"type": "dns", "value": "-x.internal"}, {"type": "ip", "value": "300.1.1.1"}]})
    assert len(two.problem["subproblems"]) == 2
    assert (await refused(client, d["newOrder"], {"identifiers": []})).type == "malformed"


async def test_allowed_domains_policy(tmp_path: Path) -> None:
    with AcmeEnv(db_url=f"sqlite:///{tmp_path / 'a.db'}",
                 settings_overrides={"allowed_domains": ("internal",)}).running() as env:
        async with env.http_client() as http:
            c = env.acme_client(http)
            await c.register()
            assert (await c.new_order(["ok.internal"])).status == 201
            with pytest.raises(AcmeClientError) as err:
                await c.new_order(["example.com"])
            assert err.value.type == "rejectedIdentifier"


async def test_accounts_contacts_update_deactivate(env: AcmeEnv) -> None:
    async with env.http_client() as http:
        c = env.acme_client(http)
        d = await c.load_directory()
        err = await refused(c, d["newAccount"], {"onlyReturnExisting": True}, use_jwk=True)
        assert err.type == "accountDoesNotExist"
        err = await refused(c, d["newAccount"], {"contact": ["tel:+1555"]}, use_jwk=True)
        assert err.type == "unsupportedContact"
        err = await refused(c, d["newAccount"], {"contact": ["mailto:not an email"]},
                            use_jwk=True)
        assert err.type == "invalidContact"
        first = await c.register(contact=["mailto:a@example.test"])
        assert first.status == 201
        again = await c.post(d["newAccount"], {"onlyReturnExisting": True}, use_jwk=True)
        assert again.status == 200
        assert again.location == c.kid
        upd = await c.post(c.kid or "", {"contact": ["mailto:b@example.test"]})
        assert upd.body["contact"] == ["mailto:b@example.test"]
        gone = await c.post(c.kid or "", {"status": "deactivated"})
        assert gone.body["status"] == "deactivated"
        err = await refused(c, d["newOrder"],
                            {"identifiers": [{"type": "dns", "value": "x.internal"}]})
        assert err.type == "unauthorized"


async def test_key_change(env: AcmeEnv, client: AcmeClient) -> None:
    d = await client.load_directory()
    old_key, new_key = client.key, ec.generate_private_key(ec.SECP256R1())

    def inner(key: object, account: str, old: object) -> dict[str, str]:
        return jws_object(key, {"alg": "ES256", "url": d["keyChange"],  # type: ignore[arg-type]
                                "jwk": public_jwk(key)},  # type: ignore[arg-type]
                          json.dumps({"account": account, "oldKey": public_jwk(old)}).encode())  # type: ignore[arg-type]

    # the inner JWS must name the account's current key
    err = await refused(client, d["keyChange"], inner(new_key, client.kid or "", new_key))
    assert err.type == "malformed"
    r = await client.post(d["keyChange"], inner(new_key, client.kid or "", old_key))
    assert r.status == 200
    assert r.body["key"] == public_jwk(new_key)
    err = await refused(client, d["newOrder"], {"identifiers": []})  # old key now signs
    assert err.type == "malformed"
    client.key = new_key
    assert (await client.new_order(["kc.internal"])).status == 201
    # a key in use by another account: 409 with that account's Location
    async with env.http_client() as http:
        other = env.acme_client(http)
        await other.register()
        with pytest.raises(AcmeClientError) as conflict:
            await client.post(d["keyChange"], inner(other.key, client.kid or "", new_key))
        assert conflict.value.status == 409


async def test_rate_limits(tmp_path: Path) -> None:
    limits = {"new_order_limit": RateLimit(per_second=0.01, burst=2)}
    with AcmeEnv(db_url=f"sqlite:///{tmp_path / 'r.db'}",
                 settings_overrides=limits).running() as env:
        async with env.http_client() as http:
            c = env.acme_client(http)
            await c.register()
            await c.new_order(["r1.internal"])
            await c.new_order(["r2.internal"])
            with pytest.raises(AcmeClientError) as err:
                await c.new_order(["r3.internal"])
            assert err.value.type == "rateLimited"
            assert err.value.status == 429
    with AcmeEnv(db_url=f"sqlite:///{tmp_path / 'r2.db'}",
                 settings_overrides={"ip_limit": RateLimit(per_second=0.01, burst=3)}
                 ).running() as env:
        async with env.http_client() as http:
            codes = [(await http.get("/acme/directory")).status_code for _ in range(5)]
            assert codes[:3] == [200, 200, 200]
            assert codes[3] == 429
            r = await http.get("/acme/directory")
            assert int(r.headers["retry-after"]) > 0


async def test_external_account_binding(tmp_path: Path) -> None:
    from certwarden.acme.accounts import add_eab_key

    with AcmeEnv(db_url=f"sqlite:///{tmp_path / 'e.db'}",
                 settings_overrides={"eab_required": True}).running() as env:
        kid, mac_key = add_eab_key(env.server)
        async with env.http_client() as http:
            c = env.acme_client(http)
            d = await c.load_directory()
            assert d["meta"]["externalAccountRequired"] is True
            err = await refused(c, d["newAccount"], {"termsOfServiceAgreed": True}, use_jwk=True)
            assert err.type == "externalAccountRequired"

            def eab(key_b64: str, account_key: object) -> dict[str, str]:
                protected = _b64({"alg": "HS256", "kid": kid, "url": d["newAccount"]})
                payload = _b64(public_jwk(account_key))  # type: ignore[arg-type]
                raw = base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))
                sig = hmac.new(raw, f"{protected}.{payload}".encode(), hashlib.sha256).digest()
                return {"protected": protected, "payload": payload, "signature": b64e(sig)}

            err = await refused(c, d["newAccount"], {"externalAccountBinding": eab(
                b64e(b"wrong key wrong key wrong key 32"), c.key)}, use_jwk=True)
            assert err.type == "unauthorized"
            r = await c.post(d["newAccount"], {"externalAccountBinding": eab(mac_key, c.key)},
                             use_jwk=True)
            assert r.status == 201
            assert r.body["externalAccountBinding"] == {"kid": kid}
            second = env.acme_client(http)
            err = await refused(second, d["newAccount"], {"externalAccountBinding": eab(
                mac_key, second.key)}, use_jwk=True)
            assert err.type == "unauthorized"
            assert "already bound" in err.problem["detail"]


async def test_wrong_methods_and_unknown_paths_are_problems(env: AcmeEnv) -> None:
    async with env.http_client() as http:
        get = await http.get("/acme/new-order")
        assert get.status_code == 405
        assert get.headers["allow"] == "POST"
        assert get.headers["content-type"] == "application/problem+json"
        assert get.headers["replay-nonce"]
        missing = await http.post("/acme/nothing/here", content=b"{}")
        assert missing.status_code == 404
        assert missing.json()["type"] == "urn:ietf:params:acme:error:notFound"
        bad_alt = await http.post("/acme/cert/x/notanumber", content=b"{}",
                                  headers={"Content-Type": "application/jose+json"})
        assert bad_alt.headers["content-type"] == "application/problem+json"
