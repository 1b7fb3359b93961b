"""The ACME store on every database we support (SQLite always, PostgreSQL when the suite runs
under tests/with-postgres.sh): compare-and-set under real thread races, unique keys, and full
concurrent orders through the app."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import threading

import pytest

from acme_client import make_csr
from acme_support import AcmeEnv
from certwarden.acme.jws import b64e
from certwarden.acme.model import (
    Account,
    AccountStatus,
    Authorization,
    AuthzStatus,
    Challenge,
    ChallengeStatus,
    ChallengeType,
    Identifier,
    IdentifierType,
    Order,
    OrderStatus,
)
from certwarden.store.acme_repo import AcmeRepo

NOW = dt.datetime.now(dt.UTC)


def _account(repo: AcmeRepo) -> str:
    account_id = secrets.token_urlsafe(12)
    row, created = repo.add_account(Account(
        id=account_id, thumbprint=secrets.token_urlsafe(32), jwk={"kty": "EC"},
        status=AccountStatus.VALID, contact=(), tos_agreed=True, eab_kid=None,
        created_at=NOW))
    assert created
    return str(row.id)


def _order(repo: AcmeRepo, account_id: str) -> str:
    order_id = secrets.token_urlsafe(12)
    authz_id = secrets.token_urlsafe(12)
    ident = Identifier(type=IdentifierType.DNS, value="s.internal")
    repo.add_order(
        Order(id=order_id, account_id=account_id, status=OrderStatus.READY,
              identifiers=(ident,), authz_ids=(authz_id,), profile="tls-server",
              expires=NOW + dt.timedelta(hours=1), created_at=NOW),
        [Authorization(id=authz_id, order_id=order_id, account_id=account_id,
                       identifier=ident, wildcard=False, status=AuthzStatus.VALID,
                       expires=NOW + dt.timedelta(hours=1),
                       challenges=(Challenge(id=secrets.token_urlsafe(12), authz_id=authz_id,
                                             type=ChallengeType.HTTP_01, token="t",
                                             status=ChallengeStatus.VALID),))])
    return order_id


def race(n: int, fn: object) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        out = fn()  # type: ignore[operator]
        with lock:
            results.append(out)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_compare_and_set_has_one_winner(db_urls: list[str]) -> None:
    for url in db_urls:
        repo = AcmeRepo.open(url)
        try:
            order_id = _order(repo, _account(repo))
            wins = race(8, lambda r=repo, o=order_id: r.set_order_status_if(
                o, expect=("ready",), status="processing"))
            assert sorted(wins) == [False] * 7 + [True], url
            row = repo.order(order_id)
            assert row is not None
            assert row.status == "processing"
            assert len(row.authz_ids) == 1
        finally:
            repo.close()


def test_account_keys_are_unique(db_urls: list[str]) -> None:
    for url in db_urls:
        repo = AcmeRepo.open(url)
        try:
            tp = secrets.token_urlsafe(32)
            rows = race(6, lambda r=repo, t=tp: r.add_account(Account(
                id=secrets.token_urlsafe(12), thumbprint=t,
                jwk={"kty": "EC"}, status=AccountStatus.VALID, contact=(), tos_agreed=False,
                eab_kid=None, created_at=NOW)))
            created = [r for r in rows if r[1]]  # type: ignore[index]
            assert len(created) == 1, url
            assert len({r[0].id for r in rows}) == 1  # type: ignore[attr-defined]
            other = _account(repo)
            other_row = repo.account(other)
            assert other_row is not None
            assert not repo.change_account_key_if(
                other, old_thumbprint=other_row.thumbprint, jwk={"kty": "EC"}, thumbprint=tp)
        finally:
            repo.close()


@pytest.mark.anyio
async def test_concurrent_orders_and_finalize_through_the_app(db_urls: list[str]) -> None:
    for url in db_urls:
        with AcmeEnv(db_url=url).running() as env:
            async with env.http_client() as http:
                c = env.acme_client(http)
                await c.register()
                results = await asyncio.gather(
                    *[c.new_order([f"pg{i}.internal"]) for i in range(12)])
                acct = await c.get(c.kid or "")
                listed = (await c.get(acct.body["orders"])).body["orders"]
                assert sorted(listed) == sorted(r.location for r in results), url
                order = results[0]
                authz = await c.get(order.body["authorizations"][0])
                ch = next(x for x in authz.body["challenges"] if x["type"] == "http-01")
                env.publish_http01(ch["token"], c.key_authorization(ch["token"]), "")
                await c.post(ch["url"], {})
                await c.poll(order.location, until=("ready",))
                csr, _ = make_csr(["pg0.internal"])
                before = len(env.ca.issued)
                outcomes = await asyncio.gather(
                    *[c.post(order.body["finalize"], {"csr": b64e(csr)}) for _ in range(4)],
                    return_exceptions=True)
                assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, url
                assert len(env.ca.issued) == before + 1


def test_shared_nonces_across_processes(db_urls: list[str]) -> None:
    from certwarden.acme.nonces import SharedNoncePool
    from certwarden.acme.problems import AcmeProblem

    for url in db_urls:
        # two "processes": separate engines and pools over one database
        repo_a, repo_b = AcmeRepo.open(url), AcmeRepo.open(url)
        try:
            a, b = SharedNoncePool(repo_a), SharedNoncePool(repo_b, ttl_seconds=-1)
            assert a.secret == b.secret  # the first one stored it, the second read it
            nonce = a.issue()
            b.consume(nonce)  # issued by one process, accepted by another
            with pytest.raises(AcmeProblem) as replay:
                a.consume(nonce)
            assert replay.value.type.value == "badNonce"
            assert "already used" in replay.value.detail
            forged = nonce[:-4] + ("AAAA" if not nonce.endswith("AAAA") else "BBBB")
            with pytest.raises(AcmeProblem) as bad:
                a.consume(forged)
            assert "not one this server issued" in bad.value.detail
            with pytest.raises(AcmeProblem) as old:
                a.consume(b.issue())  # b issues with a negative lifetime: already expired
            assert "expired" in old.value.detail
            # the one nonce accepted is remembered as used until its expiry passes
            assert repo_a.purge_nonces(before=NOW + dt.timedelta(days=1)) == 1
        finally:
            repo_a.close()
            repo_b.close()


@pytest.mark.anyio
async def test_full_order_with_database_nonces(tmp_path: object) -> None:
    from pathlib import Path

    db = f"sqlite:///{Path(str(tmp_path)) / 'n.db'}"
    with AcmeEnv(db_url=db, settings_overrides={"nonces": "database"}).running() as env:
        async with env.http_client() as http:
            c = env.acme_client(http)
            await c.register()
            pem, order = await c.issue(["nonce.internal"], answer=env.publish_http01)
            assert order.body["status"] == "valid"
            assert "BEGIN CERTIFICATE" in pem
