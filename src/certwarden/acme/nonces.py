"""Replay nonces (RFC 8555 §6.5): random, single-use, expiring.

Kept in memory: a nonce only has to outlive one client round trip, and a client that gets
``badNonce`` after a restart retries with the fresh nonce it is handed (§6.5 requires that).
The store is bounded so a flood of newNonce requests cannot grow it without limit; the
oldest nonces are dropped first.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict

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
