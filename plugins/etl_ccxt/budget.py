"""An exchange's documented rate limit, turned into a token bucket that cannot trip it.

Exchanges count request weight over a window (Binance per minute, Bybit per 5 seconds). A token bucket
holding ``C`` tokens and refilling ``r`` per second spends at most ``C + r * T`` in any ``T`` seconds. A
request counted by the exchange a little after it took its tokens (threads waiting for the GIL, the
network) shifts that window by up to ``SLACK_SECONDS``, so the bucket keeps ``C + r * (W + slack)`` within
98% of the limit, with 3% of it as burst. That sustains 94.6% of Binance's minute limit and 90.5% of
Bybit's 5-second one, whose breach costs a 10-minute ban.

Several budgets on one bucket (Binance may advertise a weight limit per minute and another per second)
share one token bucket with the smallest burst and the slowest rate: it keeps within each of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from etl.http import RateLimiter

BURST_SHARE = 0.03
SAFE_SHARE = 0.98
SLACK_SECONDS = 0.25


@dataclass(frozen=True)
class Budget:
    """``limit`` units (weight or requests) per ``window_seconds``, as the exchange documents it."""

    limit: float
    window_seconds: float

    def __str__(self) -> str:
        return f"{self.limit:g} per {self.window_seconds:g}s"

    @property
    def per_second(self) -> float:
        """The sustained rate: what refills the bucket."""
        return self.limit * (SAFE_SHARE - BURST_SHARE) / (self.window_seconds + SLACK_SECONDS)

    @property
    def burst(self) -> float:
        return self.limit * BURST_SHARE

    @property
    def safe_limit(self) -> float:
        """What the bucket lets the exchange count in one window at most."""
        return self.limit * SAFE_SHARE

    def limiter(self, key: str) -> RateLimiter:
        """The process-wide bucket for ``key`` (one per exchange API and address), shared by every stream."""
        from etl.http import rate_limiter

        return rate_limiter(f"{key} {self.limit:g}/{self.window_seconds:g}s", self.burst,
                            self.burst / self.per_second)


def reshape(limiter: RateLimiter, budgets: Sequence[Budget]) -> None:
    """Make ``limiter`` keep within every one of ``budgets``: the smallest burst, the slowest rate."""
    burst = min(budget.burst for budget in budgets)
    limiter.resize(burst, burst / min(budget.per_second for budget in budgets))
