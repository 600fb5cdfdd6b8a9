"""An exchange's documented rate limit, turned into a token bucket that cannot trip it.

Exchanges count request weight over a window (Binance per minute, Bybit per 5 seconds). A token bucket
holding ``C`` tokens and refilling ``r`` per second spends at most ``C + r * T`` in any ``T`` seconds. A
request counted by the exchange a little after it took its tokens (threads waiting for the GIL, the
network) shifts that window by up to ``SLACK_SECONDS``, so the bucket keeps ``C + r * (W + slack)`` within
98% of the limit, with 3% of it as burst. That sustains 94.6% of Binance's minute limit and 90.5% of
Bybit's 5-second one, whose breach costs a 10-minute ban.
"""

from __future__ import annotations

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

    @property
    def per_second(self) -> float:
        """The sustained rate: what refills the bucket."""
        return self.limit * (SAFE_SHARE - BURST_SHARE) / (self.window_seconds + SLACK_SECONDS)

    def limiter(self, key: str) -> RateLimiter:
        """The process-wide bucket for ``key`` (one per exchange API and address), shared by every stream."""
        from etl.http import rate_limiter

        burst = self.limit * BURST_SHARE
        return rate_limiter(f"{key} {self.limit:g}/{self.window_seconds:g}s", burst, burst / self.per_second)
