"""What an ACME handler sees: its settings, the request, who signed it, and the narrow
``AcmeCore`` it works through. Handlers (``accounts``, ``orders``, ``certificates``) import
this module, never ``server``; ``dispatch`` lists them; ``server`` runs them. No circles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from certwarden.acme import jws
from certwarden.acme.issuer import CertificateIssuer
from certwarden.acme.limits import RateLimit, RateLimiter
from certwarden.acme.model import Account
from certwarden.acme.storage import AcmeStore
from certwarden.acme.validation import Validator, ValidatorSettings
from certwarden.acme.wire import Reply, Urls


@dataclass(frozen=True, slots=True, kw_only=True)
class AcmeSettings:
    terms_of_service: str | None = None
    website: str | None = None
    caa_identities: tuple[str, ...] = ()
    eab_required: bool = False
    default_profile: str = "tls-server"
    allowed_domains: tuple[str, ...] = ()  # suffixes; empty = any name (CA policy still applies)
    max_identifiers: int = 100
    order_lifetime: dt.timedelta = dt.timedelta(hours=8)
    authz_lifetime: dt.timedelta = dt.timedelta(hours=8)
    nonce_ttl_seconds: float = 300.0
    # "memory": one process (fastest); "database": several processes or replicas share
    # nonces through the store (one row written per consumed nonce).
    nonces: str = "memory"
    orders_page_size: int = 100
    validation_workers: int = 8
    # The challenge POST waits this long for a quick validation so the reply can already say
    # "valid" and the client skips most polling; slower validations carry on in background.
    validation_reply_wait: float = 1.0
    # Generous defaults (a busy internal client, a load test) that still stop a runaway loop.
    ip_limit: RateLimit | None = field(default_factory=lambda: RateLimit(per_second=500.0,
                                                                         burst=1000))
    account_limit: RateLimit | None = field(default_factory=lambda: RateLimit(per_second=300.0,
                                                                              burst=600))
    new_order_limit: RateLimit | None = field(default_factory=lambda: RateLimit(per_second=100.0,
                                                                                burst=200))
    new_account_ip_limit: RateLimit | None = field(
        default_factory=lambda: RateLimit(per_second=5.0, burst=50))
    validator: ValidatorSettings = field(default_factory=ValidatorSettings)


class Endpoint(StrEnum):
    NEW_ACCOUNT = "new-account"
    ACCOUNT = "account"
    ORDERS = "orders"
    KEY_CHANGE = "key-change"
    NEW_ORDER = "new-order"
    ORDER = "order"
    FINALIZE = "finalize"
    AUTHZ = "authz"
    CHALLENGE = "challenge"
    CERTIFICATE = "certificate"
    REVOKE_CERT = "revoke-cert"


class KeyRule(StrEnum):
    """§6.2: which of ``jwk`` / ``kid`` a resource accepts."""

    JWK = "jwk"  # newAccount
    KID = "kid"  # everything bound to an existing account
    EITHER = "either"  # revokeCert: account key or the certificate's own key


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestContext:
    url: str  # the URL the client POSTed to, as it must appear in the JWS "url" header
    urls: Urls
    client_ip: str
    resource_id: str = ""
    alternate: int = 0
    page: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticated:
    msg: jws.JwsMessage
    jwk: Mapping[str, Any]
    account: Account | None


class AcmeCore(Protocol):
    """The part of the server a handler uses (``server.AcmeServer`` is one)."""

    @property
    def store(self) -> AcmeStore: ...

    @property
    def issuer(self) -> CertificateIssuer: ...

    @property
    def settings(self) -> AcmeSettings: ...

    @property
    def validator(self) -> Validator: ...

    @property
    def order_limits(self) -> RateLimiter: ...

    @property
    def registration_limits(self) -> RateLimiter: ...

    def submit(self, fn: Callable[[], None]) -> Future[None]:
        """Run ``fn`` on the validation pool (challenge validation is asynchronous, §7.5.1)."""
        ...


Handler = Callable[[AcmeCore, Authenticated, RequestContext], Reply]
