"""A token bucket per host (or per API), shared by every stream thread of the process.

Weights follow the exchanges' own accounting: a request costs its documented weight up front, and
costs discovered only from the response (Hyperliquid charges per item returned) are charged afterwards,
which may take the bucket into debt so the next requests wait. A 429's Retry-After pauses the whole
bucket, not just the thread that saw it, so no other stream walks into the same wall.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self, capacity: float, per_seconds: float, name: str = ""):
        if capacity <= 0 or per_seconds <= 0:
            raise ValueError("capacity and per_seconds must be positive")
        self.name = name
        self.capacity = float(capacity)
        self.rate = capacity / per_seconds
        self._tokens = float(capacity)
        self._updated = time.monotonic()
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def acquire(self, weight: float = 1) -> None:
        """Block until ``weight`` tokens are available (a weight above capacity waits for a full bucket)."""
        need = min(float(weight), self.capacity)
        while True:
            with self._lock:
                now = time.monotonic()
                self._refill(now)
                pause = self._paused_until - now
                if pause <= 0 and self._tokens >= need:
                    self._tokens -= weight
                    return
                wait = pause if pause > 0 else (need - self._tokens) / self.rate
            self.waited += wait
            time.sleep(min(wait, 5.0))

    def charge(self, weight: float) -> None:
        """Take extra weight learned from a response; the bucket may go negative."""
        if weight:
            with self._lock:
                self._refill(time.monotonic())
                self._tokens -= weight

    def pause(self, seconds: float) -> None:
        """Hold every caller of this bucket for ``seconds`` (a server asked us to back off)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)


_limiters: dict[str, RateLimiter] = {}
_registry_lock = threading.Lock()


def rate_limiter(key: str, capacity: float, per_seconds: float) -> RateLimiter:
    """The process-wide bucket for ``key`` (e.g. a host name); created by the first caller."""
    with _registry_lock:
        if key not in _limiters:
            _limiters[key] = RateLimiter(capacity, per_seconds, key)
        return _limiters[key]
