"""An exchange's documented rate limit, turned into a token bucket that cannot trip it.

Exchanges count request weight over a window (Binance per minute, Bybit per 5 seconds). A token bucket
holding ``C`` tokens and refilling ``r`` per second spends at most ``C + r * W`` in any window of ``W``
seconds, so the bucket is sized to keep that sum under the limit: 3% of the limit as burst, 95% refilled
over the window, 2% kept for clock skew and requests in flight. Sustained use is 95% of the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from etl.http import RateLimiter

BURST_SHARE = 0.03
SUSTAINED_SHARE = 0.95


@dataclass(frozen=True)
class Budget:
    """``limit`` units (weight or requests) per ``window_seconds``, as the exchange documents it."""

    limit: float
    window_seconds: float

    def limiter(self, key: str) -> RateLimiter:
        """The process-wide bucket for ``key`` (one per exchange API and address), shared by every stream."""
        from etl.http import rate_limiter

        burst = self.limit * BURST_SHARE
        per_second = self.limit * SUSTAINED_SHARE / self.window_seconds
        return rate_limiter(f"{key} {self.limit:g}/{self.window_seconds:g}s", burst, burst / per_second)
