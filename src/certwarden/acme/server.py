"""The HTTP-free ACME core (step-ca's ``authority`` shape): authenticate, dispatch, reply.

The web layer hands each POST here as (endpoint, body bytes, request context) and gets back
a ``Reply`` or an ``AcmeProblem``; it never looks inside a JWS. Handlers live one resource
per module (``accounts``, ``orders``, ``certificates``), see only ``context.AcmeCore``, and
are listed in ``dispatch.HANDLERS``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from certwarden.acme import jws
from certwarden.acme.context import AcmeSettings, Authenticated, Endpoint, KeyRule, RequestContext
from certwarden.acme.dispatch import HANDLERS
from certwarden.acme.issuer import CertificateIssuer
from certwarden.acme.limits import RateLimiter
from certwarden.acme.model import Account, AccountStatus
from certwarden.acme.nonces import NoncePool, SharedNoncePool
from certwarden.acme.problems import AcmeProblem, ProblemType, malformed
from certwarden.acme.storage import AcmeStore
from certwarden.acme.validation import Validator
from certwarden.acme.wire import Reply, Urls


class AcmeServer:
    def __init__(self, *, store: AcmeStore, issuer: CertificateIssuer,
                 settings: AcmeSettings | None = None) -> None:
        self.store = store
        self.issuer = issuer
        self.settings = settings or AcmeSettings()
        self.nonces: NoncePool | SharedNoncePool
        if self.settings.nonces == "database":
            self.nonces = SharedNoncePool(store, ttl_seconds=self.settings.nonce_ttl_seconds)
        elif self.settings.nonces == "memory":
            self.nonces = NoncePool(ttl_seconds=self.settings.nonce_ttl_seconds)
        else:
            raise ValueError(f"nonces must be 'memory' or 'database', not {self.settings.nonces!r}")
        self.validator = Validator(self.settings.validator)
        self.ip_limits = RateLimiter(self.settings.ip_limit, what="client address")
        self.account_limits = RateLimiter(self.settings.account_limit, what="account")
        self.order_limits = RateLimiter(self.settings.new_order_limit, what="account's new orders")
        self.registration_limits = RateLimiter(self.settings.new_account_ip_limit,
                                               what="client address's new accounts")
        self._pool = ThreadPoolExecutor(max_workers=self.settings.validation_workers,
                                        thread_name_prefix="acme-va")
        self._pending: set[Any] = set()
        self._pending_lock = threading.Lock()

    # lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def submit(self, fn: Callable[[], None]) -> Future[None]:
        """Run ``fn`` on the validation pool (challenge validation is asynchronous, §7.5.1)."""
        fut = self._pool.submit(fn)
        with self._pending_lock:
            self._pending.add(fut)
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: Any) -> None:
        with self._pending_lock:
            self._pending.discard(fut)

    def drain(self) -> None:
        """Wait for validations in flight (tests, orderly shutdown)."""
        with self._pending_lock:
            futures = list(self._pending)
        for fut in futures:
            fut.result()

    # unauthenticated resources ------------------------------------------------------------
    def directory(self, urls: Urls) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "externalAccountRequired": self.settings.eab_required,
            "profiles": dict(self.issuer.profiles),
        }
        if self.settings.terms_of_service:
            meta["termsOfService"] = self.settings.terms_of_service
        if self.settings.website:
            meta["website"] = self.settings.website
        if self.settings.caa_identities:
            meta["caaIdentities"] = list(self.settings.caa_identities)
        return {
            "newNonce": urls.new_nonce(),
            "newAccount": urls.new_account(),
            "newOrder": urls.new_order(),
            "revokeCert": urls.revoke_cert(),
            "keyChange": urls.key_change(),
            "renewalInfo": urls.renewal_info(),
            "meta": meta,
        }

    def new_nonce(self) -> str:
        return self.nonces.issue()

    def check_client(self, client_ip: str) -> None:
        self.ip_limits.take(client_ip)

    # authenticated resources --------------------------------------------------------------
    def post(self, endpoint: Endpoint, body: bytes, ctx: RequestContext) -> Reply:
        handler, rule = HANDLERS[endpoint]
        auth = self.authenticate(body, ctx, rule)
        if auth.account is not None:
            self.account_limits.take(auth.account.id)
        return handler(self, auth, ctx)

    def authenticate(self, body: bytes, ctx: RequestContext, rule: KeyRule) -> Authenticated:
        msg = jws.parse(body)
        if msg.url != ctx.url:
            raise AcmeProblem(ProblemType.UNAUTHORIZED,
                              f"JWS 'url' header {msg.url!r} is not the request URL {ctx.url!r}")
        assert msg.nonce is not None
        self.nonces.consume(msg.nonce)
        if msg.jwk is not None and rule == KeyRule.KID:
            raise malformed("this resource needs a 'kid' (account URL), not a 'jwk'")
        if msg.kid is not None and rule == KeyRule.JWK:
            raise malformed("newAccount needs a 'jwk', not a 'kid'")
        account: Account | None = None
        if msg.kid is not None:
            account_id = ctx.urls.account_id_from_kid(msg.kid)
            account = self.store.account(account_id) if account_id else None
            if account is None:
                raise AcmeProblem(ProblemType.ACCOUNT_DOES_NOT_EXIST,
                                  f"no account at {msg.kid!r}")
            if account.status != AccountStatus.VALID:
                raise AcmeProblem(ProblemType.UNAUTHORIZED, f"account is {account.status.value}")
            key = account.jwk
        else:
            assert msg.jwk is not None
            key = msg.jwk
        jws.verify(msg, key)
        return Authenticated(msg=msg, jwk=jws.canonical_jwk(key), account=account)
