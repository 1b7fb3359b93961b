"""The ACME app through httpx: full orders against a real CA, a real SQL store, a real DNS
server and a real http-01 responder on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from acme_client import AcmeClient, AcmeClientError, make_csr
from acme_support import AcmeEnv
from certwarden.acme.jws import b64e

pytestmark = pytest.mark.anyio


@pytest.fixture
def env(tmp_path: Path) -> Iterator[AcmeEnv]:
    with AcmeEnv(db_url=f"sqlite:///{tmp_path / 'acme.db'}").running() as e:
        yield e


@pytest.fixture
async def client(env: AcmeEnv) -> AsyncIterator[AcmeClient]:
    async with env.http_client() as http:
        c = env.acme_client(http)
        await c.register(contact=["mailto:ops@example.test"])
        yield c


async def test_directory_advertises_resources_profiles_and_ari(env: AcmeEnv) -> None:
    async with env.http_client() as http:
        r = await http.get("/acme/directory")
    d = r.json()
    assert r.status_code == 200
    for key in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo"):
        assert d[key].startswith("https://acme.test/acme/")
    assert d["meta"]["profiles"] == dict(env.ca.PROFILES)
    assert d["meta"]["externalAccountRequired"] is False


async def test_new_nonce_head_and_get(env: AcmeEnv) -> None:
    async with env.http_client() as http:
        head = await http.head("/acme/new-nonce")
        get = await http.get("/acme/new-nonce")
    assert head.status_code == 200
    assert get.status_code == 204
    assert head.headers["replay-nonce"] != get.headers["replay-nonce"]
    assert head.headers["cache-control"] == "no-store"


async def test_full_http01_order_issues_a_chain_the_ca_signed(env: AcmeEnv,
                                                              client: AcmeClient) -> None:
    pem, order = await client.issue(["app.internal", "www.app.internal"],
                                    answer=env.publish_http01)
    certs = x509.load_pem_x509_certificates(pem.encode())
    assert len(certs) == 2
    leaf = certs[0]
    leaf.verify_directly_issued_by(env.ca.intermediate)
    certs[1].verify_directly_issued_by(env.ca.root)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["app.internal", "www.app.internal"]
    assert order.body["status"] == "valid"
    # the validator really fetched both tokens over HTTP with the right Host header
    assert any(h.startswith("app.internal/.well-known/acme-challenge/")
               for h in env.http01.hits)
    assert any(h.startswith("www.app.internal/") for h in env.http01.hits)


async def test_dns01_and_wildcard(env: AcmeEnv, client: AcmeClient) -> None:
    pem, _ = await client.issue(["*.svc.internal"], answer=env.publish_dns01,
                                challenge_type="dns-01")
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["*.svc.internal"]
    assert ("_acme-challenge.svc.internal", "TXT") in env.dns.queries


async def test_wrong_http01_answer_fails_the_order_with_incorrect_response(
        env: AcmeEnv, client: AcmeClient) -> None:
    order = await client.new_order(["bad.internal"])
    authz = await client.get(order.body["authorizations"][0])
    ch = next(c for c in authz.body["challenges"] if c["type"] == "http-01")
    env.http01.tokens[ch["token"]] = "not-the-key-authorization"
    await client.post(ch["url"], {})
    env.server.drain()
    authz = await client.get(order.body["authorizations"][0])
    assert authz.body["status"] == "invalid"
    failed = next(c for c in authz.body["challenges"] if c["type"] == "http-01")
    assert failed["error"]["type"] == "urn:ietf:params:acme:error:incorrectResponse"
    final = await client.get(order.location)
    assert final.body["status"] == "invalid"
    assert final.body["error"]["type"].endswith("incorrectResponse")


async def test_validation_refuses_addresses_outside_the_allowlist(env: AcmeEnv,
                                                                  client: AcmeClient) -> None:
    env.dns.a["public.internal"] = ["192.0.2.10"]  # TEST-NET-1: not in the private allowlist
    order = await client.new_order(["public.internal"])
    authz = await client.get(order.body["authorizations"][0])
    ch = next(c for c in authz.body["challenges"] if c["type"] == "http-01")
    await client.post(ch["url"], {})
    env.server.drain()
    authz = await client.get(order.body["authorizations"][0])
    errs = [c.get("error", {}) for c in authz.body["challenges"] if c["type"] == "http-01"]
    assert errs[0]["type"].endswith("rejectedIdentifier")
    assert "allowlist" in errs[0]["detail"]


async def test_finalize_before_ready_is_order_not_ready(env: AcmeEnv, client: AcmeClient) -> None:
    order = await client.new_order(["early.internal"])
    csr, _ = make_csr(["early.internal"])
    with pytest.raises(AcmeClientError) as err:
        await client.post(order.body["finalize"], {"csr": b64e(csr)})
    assert err.value.type == "orderNotReady"
    assert err.value.status == 403


async def test_csr_names_must_equal_the_order(env: AcmeEnv, client: AcmeClient) -> None:
    order = await client.new_order(["csr.internal"])
    authz = await client.get(order.body["authorizations"][0])
    ch = next(c for c in authz.body["challenges"] if c["type"] == "http-01")
    env.publish_http01(ch["token"], client.key_authorization(ch["token"]), "")
    await client.post(ch["url"], {})
    await client.poll(order.location, until=("ready",))
    for names in (["csr.internal", "extra.internal"], ["other.internal"]):
        csr, _ = make_csr(names)
        with pytest.raises(AcmeClientError) as err:
            await client.post(order.body["finalize"], {"csr": b64e(csr)})
        assert err.value.type == "badCSR"
    csr, _ = make_csr(["csr.internal"], client.key)  # the account key itself
    with pytest.raises(AcmeClientError) as err:
        await client.post(order.body["finalize"], {"csr": b64e(csr)})
    assert err.value.type == "badCSR"
    assert "account key" in err.value.problem["detail"]
    # still ready: a refused CSR does not burn the order
    assert (await client.get(order.location)).body["status"] == "ready"


async def test_alternate_chain_by_link_header(env: AcmeEnv, client: AcmeClient) -> None:
    _, order = await client.issue(["alt.internal"], answer=env.publish_http01)
    r = await client.get(order.body["certificate"])
    assert r.headers["content-type"].startswith("application/pem-certificate-chain")
    alternates = [part.split(";")[0].strip(" <>") for part in r.headers["link"].split(",")
                  if 'rel="alternate"' in part]
    assert len(alternates) == 1
    alt = await client.get(alternates[0])
    chain = x509.load_pem_x509_certificates(alt.body)
    chain[1].verify_directly_issued_by(env.ca.alt_root)


async def test_revoke_by_account_key_then_by_cert_key(env: AcmeEnv, client: AcmeClient) -> None:
    d = await client.load_directory()
    pem1, _ = await client.issue(["rev1.internal"], answer=env.publish_http01)
    der1 = x509.load_pem_x509_certificates(pem1.encode())[0].public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"])
        .Encoding.DER)
    r = await client.post(d["revokeCert"], {"certificate": b64e(der1), "reason": 4})
    assert r.status == 200
    serial1 = x509.load_der_x509_certificate(der1).serial_number
    assert env.ca.revoked[serial1] == 4
    with pytest.raises(AcmeClientError) as err:
        await client.post(d["revokeCert"], {"certificate": b64e(der1)})
    assert err.value.type == "alreadyRevoked"

    cert_key = ec.generate_private_key(ec.SECP256R1())
    pem2, _ = await client.issue(["rev2.internal"], answer=env.publish_http01, csr_key=cert_key)
    from cryptography.hazmat.primitives.serialization import Encoding

    der2 = x509.load_pem_x509_certificates(pem2.encode())[0].public_bytes(Encoding.DER)
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(AcmeClientError) as err:
        await client.post(d["revokeCert"], {"certificate": b64e(der2)}, key=stranger,
                          use_jwk=True)
    assert err.value.type == "unauthorized"
    r = await client.post(d["revokeCert"], {"certificate": b64e(der2), "reason": 1},
                          key=cert_key, use_jwk=True)
    assert r.status == 200
    with pytest.raises(AcmeClientError) as err:
        await client.post(d["revokeCert"], {"certificate": b64e(der2), "reason": 2})
    assert err.value.type == "badRevocationReason"


async def test_renewal_info_and_replaces(env: AcmeEnv, client: AcmeClient) -> None:
    from certwarden.acme.certificates import ari_cert_id

    pem, _ = await client.issue(["ari.internal"], answer=env.publish_http01)
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    cert_id = ari_cert_id(leaf)
    d = await client.load_directory()
    r = await client.http.get(f"{d['renewalInfo']}/{cert_id}")
    assert r.status_code == 200
    assert "retry-after" in r.headers
    window = r.json()["suggestedWindow"]
    assert leaf.not_valid_before_utc.isoformat() < window["start"].replace("Z", "+00:00")
    assert window["start"] < window["end"]
    assert window["end"].replace("Z", "+00:00") < leaf.not_valid_after_utc.isoformat()
    _pem2, order2 = await client.issue(["ari.internal"], answer=env.publish_http01,
                                      replaces=cert_id)
    assert order2.body["replaces"] == cert_id
    with pytest.raises(AcmeClientError) as err:
        await client.new_order(["ari.internal"], replaces=cert_id)
    assert err.value.status == 409
    r = await client.http.get(f"{d['renewalInfo']}/AAAA.BBBB")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_profiles_are_honoured_and_unknown_ones_refused(env: AcmeEnv,
                                                              client: AcmeClient) -> None:
    pem, order = await client.issue(["p.internal"], answer=env.publish_http01, profile="short")
    assert order.body["profile"] == "short"
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days <= 1
    with pytest.raises(AcmeClientError) as err:
        await client.new_order(["p.internal"], profile="nope")
    assert err.value.type == "invalidProfile"


async def test_orders_list_and_concurrent_orders_on_one_account(env: AcmeEnv,
                                                                client: AcmeClient) -> None:
    # Given 20 orders created concurrently on one account
    results = await asyncio.gather(*[client.new_order([f"c{i}.internal"]) for i in range(20)])
    created = {r.location for r in results}
    assert len(created) == 20
    # Then the account's orders list has every one of them, exactly once
    acct = await client.get(client.kid or "")
    listed = await client.get(acct.body["orders"])
    assert sorted(listed.body["orders"]) == sorted(created)


async def test_concurrent_finalize_issues_exactly_once(env: AcmeEnv, client: AcmeClient) -> None:
    order = await client.new_order(["race.internal"])
    authz = await client.get(order.body["authorizations"][0])
    ch = next(c for c in authz.body["challenges"] if c["type"] == "http-01")
    env.publish_http01(ch["token"], client.key_authorization(ch["token"]), "")
    await client.post(ch["url"], {})
    await client.poll(order.location, until=("ready",))
    before = len(env.ca.issued)
    csr, _ = make_csr(["race.internal"])
    outcomes = await asyncio.gather(
        *[client.post(order.body["finalize"], {"csr": b64e(csr)}) for _ in range(5)],
        return_exceptions=True)
    wins = [o for o in outcomes if not isinstance(o, BaseException)]
    losses = [o for o in outcomes if isinstance(o, AcmeClientError)]
    assert len(wins) == 1
    assert len(losses) == 4
    assert all(e.type == "orderNotReady" for e in losses)
    assert len(env.ca.issued) == before + 1


async def test_orders_survive_a_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'restart.db'}"
    with AcmeEnv(db_url=db).running() as env:
        async with env.http_client() as http:
            c = env.acme_client(http)
            await c.register()
            order = await c.new_order(["persist.internal"])
            key, kid = c.key, c.kid
    with AcmeEnv(db_url=db).running() as env2:
        async with env2.http_client() as http:
            c2 = env2.acme_client(http, key=key)
            c2.kid = kid
            again = await c2.get(order.location)
            assert again.body["identifiers"] == [{"type": "dns", "value": "persist.internal"}]
            assert again.body["status"] == "pending"
            authz = await c2.get(again.body["authorizations"][0])
            ch = next(x for x in authz.body["challenges"] if x["type"] == "http-01")
            env2.publish_http01(ch["token"], c2.key_authorization(ch["token"]), "")
            await c2.post(ch["url"], {})
            assert (await c2.poll(order.location, until=("ready",))).body["status"] == "ready"


async def test_orders_list_pages_with_link_next(tmp_path: Path) -> None:
    with AcmeEnv(db_url=f"sqlite:///{tmp_path / 'p.db'}",
                 settings_overrides={"orders_page_size": 2}).running() as env:
        async with env.http_client() as http:
            c = env.acme_client(http)
            await c.register()
            made = [(await c.new_order([f"pg{i}.internal"])).location for i in range(5)]
            url: str | None = (await c.get(c.kid or "")).body["orders"]
            seen: list[str] = []
            while url:
                page = await c.get(url)
                seen += page.body["orders"]
                nxt = [p.split(";")[0].strip(" <>") for p in page.headers["link"].split(",")
                       if 'rel="next"' in p]
                url = nxt[0] if nxt else None
            assert seen == made


async def test_deactivated_authorization_fails_its_order(env: AcmeEnv,
                                                         client: AcmeClient) -> None:
    order = await client.new_order(["deact.internal"])
    authz_url = order.body["authorizations"][0]
    r = await client.post(authz_url, {"status": "deactivated"})
    assert r.body["status"] == "deactivated"
    assert (await client.get(order.location)).body["status"] == "invalid"
    with pytest.raises(AcmeClientError) as err:
        await client.post(authz_url, {"status": "valid"})
    assert err.value.type == "malformed"


async def test_expired_order_turns_invalid(tmp_path: Path) -> None:
    import datetime as dt

    with AcmeEnv(db_url=f"sqlite:///{tmp_path / 'x.db'}", settings_overrides={
            "order_lifetime": dt.timedelta(seconds=1)}).running() as env:
        async with env.http_client() as http:
            c = env.acme_client(http)
            await c.register()
            order = await c.new_order(["exp.internal"])
            await asyncio.sleep(1.2)
            final = await c.get(order.location)
            assert final.body["status"] == "invalid"
            assert "expired" in final.body["error"]["detail"]
