"""One rate budget per host for a whole Dask cluster (``rate_budget = "cluster"``): the buckets live on the
scheduler, and every worker's requests reserve their weight there first.

Why the scheduler, and a reservation: the workers already hold a connection to it, so a request costs one
round trip on it (about a millisecond, ``bench/bench_cluster.py``) and nothing new to start or lose; a
``distributed.Semaphore`` counts concurrent holders rather than weight over time, a Variable-based bucket
needs a lock and two more round trips per request, and an Actor lives on one worker, whose loss would lose
the budget. The scheduler answers a reservation at once (``RateLimiter.reserve``: take the weight, say how
long to wait), and the worker sleeps, so no request blocks the scheduler's event loop.

The scheduler must be able to import ``etl`` (the same environment as the workers, as Dask recommends).
"""

from __future__ import annotations

import time
from typing import Any

from distributed import SchedulerPlugin
from distributed.utils import sync

from .ratelimit import RateLimiter, share_limiters

HANDLER = "etl_budget"


class BudgetBank(SchedulerPlugin):
    """The cluster's buckets, by key (a source's host and budget), on the scheduler: created by the first
    worker that asks, with that worker's shape."""

    name = "etl-budgets"

    def __init__(self) -> None:
        self.buckets: dict[str, RateLimiter] = {}

    async def start(self, scheduler: Any) -> None:
        scheduler.handlers[HANDLER] = self.handle

    def handle(self, action: str, key: str, capacity: float, per_seconds: float, weight: float = 0.0,
               seconds: float = 0.0) -> float:
        """``reserve`` (the seconds to wait), ``charge``, ``pause`` or ``resize`` the bucket ``key``."""
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = RateLimiter(capacity, per_seconds, key)
        if action == "reserve":
            return bucket.reserve(weight)
        if action == "charge":
            bucket.charge(weight)
        elif action == "pause":
            bucket.pause(seconds)
        elif action == "resize":
            bucket.resize(capacity, per_seconds)
        return 0.0


class SharedLimiter:
    """A worker's handle on one of the scheduler's buckets, with ``RateLimiter``'s methods, so sources pace
    the same way whether the budget is theirs or the cluster's."""

    def __init__(self, worker: Any, key: str, capacity: float, per_seconds: float):
        self.worker, self.name = worker, key
        self.shape = (float(capacity), float(per_seconds))
        self.waited = 0.0

    def _ask(self, action: str, **values: float) -> float:
        capacity, per_seconds = self.shape
        call = getattr(self.worker.scheduler, HANDLER)
        return float(sync(self.worker.loop, call, action=action, key=self.name, capacity=capacity,
                          per_seconds=per_seconds, **values))

    def acquire(self, weight: float = 1) -> None:
        wait = self._ask("reserve", weight=weight)
        if wait > 0:
            self.waited += wait
            time.sleep(wait)

    def charge(self, weight: float) -> None:
        if weight:
            self._ask("charge", weight=weight)

    def pause(self, seconds: float) -> None:
        self._ask("pause", seconds=seconds)

    def resize(self, capacity: float, per_seconds: float) -> None:
        self.shape = (float(capacity), float(per_seconds))
        self._ask("resize")


def share_on(worker: Any) -> None:
    """From now on, every bucket a source on ``worker`` asks for is the cluster's."""
    handles: dict[str, SharedLimiter] = {}

    def limiter(key: str, capacity: float, per_seconds: float) -> SharedLimiter:
        if key not in handles:
            handles[key] = SharedLimiter(worker, key, capacity, per_seconds)
        return handles[key]

    share_limiters(limiter)


def stop_sharing() -> None:
    share_limiters(None)
