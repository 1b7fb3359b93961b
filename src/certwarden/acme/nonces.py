"""Replay nonces (RFC 8555 §6.5): random, single-use, expiring.

Kept in memory: a nonce only has to outlive one client round trip, and a client that gets
``badNonce`` after a restart retries with the fresh nonce it is handed (§6.5 requires that).
The store is bounded so a flood of newNonce requests cannot grow it without limit; the
oldest nonces are dropped first. ``SharedNoncePool`` serves several processes (uvicorn
workers, replicas) from the database instead.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from typing import Protocol

from certwarden.acme.problems import AcmeProblem, ProblemType


class NoncePool:
    def __init__(self, *, ttl_seconds: float = 300.0, capacity: int = 200_000) -> None:
        self.ttl = ttl_seconds
        self.capacity = capacity
        self._live: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(16)
        now = time.monotonic()
        with self._lock:
            self._live[nonce] = now + self.ttl
            while len(self._live) > self.capacity:
                self._live.popitem(last=False)
            self._expire(now)
        return nonce

    def consume(self, nonce: str) -> None:
        """Accept ``nonce`` once; raise ``badNonce`` if unknown, used or expired."""
        now = time.monotonic()
        with self._lock:
            expiry = self._live.pop(nonce, None)
        if expiry is None:
            raise AcmeProblem(ProblemType.BAD_NONCE, "nonce is unknown or was already used")
        if expiry < now:
            raise AcmeProblem(ProblemType.BAD_NONCE, "nonce has expired")

    def _expire(self, now: float) -> None:
        # Insertion order is expiry order (one ttl), so expired nonces sit at the front.
        while self._live:
            first, expiry = next(iter(self._live.items()))
            if expiry >= now:
                break
            del self._live[first]

    def __len__(self) -> int:
        return len(self._live)


class SharedNoncePool:
    """Nonces for a server run as several processes over one database.

    A nonce is ``base64url(expiry || random || HMAC(secret, expiry || random)[:16])``: any
    process holding the shared secret can check it was ours and is unexpired without a
    lookup; single use is a unique row in the database, written when it is consumed. Used
    rows are purged once expired (they could not be accepted again anyway).
    """

    PURGE_EVERY = 1000

    def __init__(self, store: NonceLedger, *, ttl_seconds: float = 300.0) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self.secret = store.secret("nonce-hmac", secrets.token_bytes(32))
        self._consumed = 0

    def issue(self) -> str:
        expiry = int(time.time() + self.ttl).to_bytes(8, "big")
        body = expiry + secrets.token_bytes(10)
        mac = hmac.new(self.secret, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")

    def consume(self, nonce: str) -> None:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, binascii.Error):
            raw = b""
        body, mac = raw[:18], raw[18:]
        good = hmac.new(self.secret, body, hashlib.sha256).digest()[:16]
        if len(raw) != 34 or not hmac.compare_digest(mac, good):
            raise AcmeProblem(ProblemType.BAD_NONCE, "nonce is not one this server issued")
        expiry = int.from_bytes(body[:8], "big")
        if expiry < time.time():
            raise AcmeProblem(ProblemType.BAD_NONCE, "nonce has expired")
        when = dt.datetime.fromtimestamp(expiry, dt.UTC)
        if not self.store.claim_nonce_if(body.hex(), expires=when):
            raise AcmeProblem(ProblemType.BAD_NONCE, "nonce was already used")
        self._consumed += 1
        if self._consumed % self.PURGE_EVERY == 0:
            self.store.purge_nonces(before=dt.datetime.now(dt.UTC))


class NonceLedger(Protocol):
    def secret(self, name: str, make: bytes) -> bytes: ...

    def claim_nonce_if(self, nonce: str, *, expires: dt.datetime) -> bool: ...

    def purge_nonces(self, *, before: dt.datetime) -> int: ...
