"""A token bucket per host (or per API), shared by every stream thread of the process.

Weights follow the exchanges' own accounting: a request costs its documented weight up front, and
costs discovered only from the response (Hyperliquid charges per item returned) are charged afterwards,
which may take the bucket into debt so the next requests wait. A 429's Retry-After pauses the whole
bucket, not just the thread that saw it, so no other stream walks into the same wall. An exchange that
advertises its own budget reshapes the bucket (``resize``); one that reports the weight it counts feeds a
``WindowCount``, which holds requests while the exchange's own window is full.

On a Dask cluster with ``rate_budget = "cluster"``, ``rate_limiter`` hands out buckets held by the scheduler
(``etl.cluster_budget``) instead, so the workers of the cluster share one budget per host; sources see the
same four methods either way.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any


class RateLimiter:
    """``capacity`` tokens, refilled at ``capacity / per_seconds`` a second; ``waited`` counts the seconds
    callers spent waiting for tokens (summed over threads), which says whether the limit paced a run."""

    def __init__(self, capacity: float, per_seconds: float, name: str = ""):
        _check(capacity, per_seconds)
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
        while True:
            with self._lock:
                need = min(float(weight), self.capacity)  # inside: a resize may have made the bucket smaller
                now = time.monotonic()
                self._refill(now)
                pause = self._paused_until - now
                if pause <= 0 and self._tokens >= need:
                    self._tokens -= weight
                    return
                wait = min(pause if pause > 0 else (need - self._tokens) / self.rate, 5.0)
                self.waited += wait
            time.sleep(wait)

    def reserve(self, weight: float = 1) -> float:
        """Take ``weight`` tokens now and return the seconds to wait before sending: ``acquire`` for callers
        that cannot block here (the scheduler's shared buckets answer many workers on one event loop). The
        bucket goes into debt, so the next reservation waits behind this one."""
        with self._lock:
            now = time.monotonic()
            self._refill(now)
            short = min(float(weight), self.capacity) - self._tokens
            self._tokens -= weight
            return max(self._paused_until - now, short / self.rate, 0.0)

    def charge(self, weight: float) -> None:
        """Take extra weight learned from a response; the bucket may go negative."""
        if weight:
            with self._lock:
                self._refill(time.monotonic())
                self._tokens -= weight

    def resize(self, capacity: float, per_seconds: float) -> None:
        """Take a new shape (a budget the server advertised). Weight taken and not refilled yet stays owed: the
        requests that learned the budget (Binance's ``exchangeInfo`` weighs 20), sent under a generous shape,
        count against a smaller one instead of being forgotten with the tokens above its capacity."""
        _check(capacity, per_seconds)
        with self._lock:
            self._refill(time.monotonic())
            owed = self.capacity - self._tokens
            self.capacity = float(capacity)
            self.rate = capacity / per_seconds
            self._tokens = min(self._tokens, self.capacity - owed)

    def pause(self, seconds: float) -> None:
        """Hold every caller of this bucket for ``seconds`` (a server asked us to back off)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)


class WindowCount:
    """An exchange's count of one window (``limit`` units per ``seconds``), mirrored on this side.

    A token bucket paces requests, but cannot see weight it never handed out: another client of the same
    address, a run that just ended, or requests sent before the exchange's advertised budget was known.
    The exchange reports its count (Binance's ``X-MBX-USED-WEIGHT-1M``); ``report`` keeps what is not this
    process's own weight as ``others``, which is gone at the latest a window later, and ``acquire`` waits
    until a request fits under ``limit`` with this process's weight of the last window. ``slack`` keeps
    this side's own weight a little longer than the exchange does (it counts a request on arrival).
    """

    def __init__(self, limit: float, seconds: float, slack: float = 0.25):
        _check(limit, seconds)
        self.limit = limit
        self.seconds = seconds + slack
        self._spent: deque[tuple[float, float]] = deque()
        self._own = 0.0
        self._others = 0.0
        self._others_until = 0.0
        self._lock = threading.Lock()

    def reshaped(self, limit: float, seconds: float) -> WindowCount:
        """A count of another window that already holds the weight this one has seen sent."""
        other = WindowCount(limit, seconds)
        with self._lock:
            other._spent, other._own = deque(self._spent), self._own
        return other

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self.seconds:
            self._own -= self._spent.popleft()[1]
        if now >= self._others_until:
            self._others = 0.0

    def acquire(self, weight: float) -> None:
        """Wait until ``weight`` fits in the window, and count it (a weight above ``limit`` waits for an empty one)."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._expire(now)
                used = self._own + self._others
                if used + weight <= self.limit or used == 0:
                    self._spent.append((now, weight))
                    self._own += weight
                    return
                wait = self._next_free(now)
            time.sleep(min(max(wait, 0.001), 1.0))

    def _next_free(self, now: float) -> float:
        own = self._spent[0][0] + self.seconds - now if self._spent else float("inf")
        others = self._others_until - now if self._others else float("inf")
        return min(own, others)

    def report(self, used: float, unanswered: float = 0.0) -> None:
        """The exchange counts ``used`` in its window, this process's requests without an answer yet excepted."""
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            others = max(0.0, used - (self._own - unanswered))
            if others > 0:
                self._others, self._others_until = others, now + self.seconds
            else:
                self._others = 0.0


def _check(capacity: float, per_seconds: float) -> None:
    if capacity <= 0 or per_seconds <= 0:
        raise ValueError("capacity and per_seconds must be positive")


_limiters: dict[str, RateLimiter] = {}
_registry_lock = threading.Lock()
# Where buckets come from instead while this process is a worker of a cluster that shares its budgets.
_shared: Callable[[str, float, float], Any] | None = None


def rate_limiter(key: str, capacity: float, per_seconds: float) -> RateLimiter:
    """The process-wide bucket for ``key`` (e.g. a host name); created by the first caller. On a worker of a
    cluster sharing its budgets (``share_limiters``), the cluster's bucket for ``key``."""
    with _registry_lock:
        if _shared is not None:
            return _shared(key, capacity, per_seconds)  # type: ignore[no-any-return]
        if key not in _limiters:
            _limiters[key] = RateLimiter(capacity, per_seconds, key)
        return _limiters[key]


def share_limiters(factory: Callable[[str, float, float], Any] | None) -> None:
    """Make ``rate_limiter`` return ``factory(key, capacity, per_seconds)`` (a bucket with ``RateLimiter``'s
    methods, shared beyond this process), or with None this process's own buckets again."""
    global _shared
    with _registry_lock:
        _shared = factory
