"""Rate limits per account and per client IP: token buckets, in process memory.

A bucket holds ``burst`` tokens and refills at ``per_second``; an empty bucket is a
``rateLimited`` problem with a Retry-After. Limits guard one process (replicas each apply
theirs), which is what they are for: stopping one client from starving the others.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from certwarden.acme.problems import AcmeProblem, ProblemType


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    per_second: float
    burst: int


class RateLimiter:
    def __init__(self, limit: RateLimit | None, *, what: str, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.what = what
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        if self.limit is None:
            return
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - stamp) * self.limit.per_second)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / self.limit.per_second)
                raise AcmeProblem(ProblemType.RATE_LIMITED,
                                  f"too many requests for this {self.what}; retry in {wait}s",
                                  headers={"Retry-After": str(wait)})
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # a flood of distinct keys: forget rather than grow
            self._buckets[key] = (tokens - 1.0, now)
