"""Hyperliquid's ``POST /info`` endpoint, spent by its documented weights.

Every info request costs a base weight of 20 from the 1200-per-minute budget of the caller's IP; the
time-series queries also cost extra weight per item *returned*, which is known only once the answer
arrives, so it is charged to the shared limiter afterwards. The limiter is shared by every stream of
the process that talks to the same host, as Hyperliquid counts per IP.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from etl.errors import SourceError
from etl.log import get_logger

log = get_logger("etl_hyperliquid")

BASE_WEIGHT = 20
CANDLES_PER_EXTRA_WEIGHT = 60
FUNDING_ROWS_PER_EXTRA_WEIGHT = 20


def is_spot(coin: str) -> bool:
    """Spot pairs are named ``PURR/USDC`` (the canonical pair) or ``@{pair index}``; perps by coin."""
    return "/" in coin or coin.startswith("@")


class InfoClient:
    """One ``/info`` endpoint: weighted requests, plus the lists of coins it knows (fetched once)."""

    def __init__(self, base_url: str, weight_per_minute: int, attempts: int):
        from etl.http import HttpClient, rate_limiter

        self.limiter = rate_limiter(f"hyperliquid {urlsplit(base_url).netloc}", weight_per_minute, 60)
        self.http = HttpClient(base_url, limiter=self.limiter, attempts=attempts)
        self._coins: set[str] | None = None
        self._coins_lock = threading.Lock()

    def rows(self, body: dict[str, Any], items_per_extra_weight: int) -> list[dict[str, Any]]:
        """Send a time-series query and return its rows; the per-item weight is charged afterwards."""
        rows = self.http.post_json("/info", body, weight=BASE_WEIGHT)
        if not isinstance(rows, list):
            raise SourceError(f"Hyperliquid answered {body['type']} with {str(rows)[:200]!r} instead of a list")
        extra = len(rows) // items_per_extra_weight
        self.limiter.charge(extra)
        log.debug("hyperliquid info", type=body["type"], rows=len(rows), weight=BASE_WEIGHT + extra)
        return rows

    def knows(self, coin: str) -> bool:
        """Is ``coin`` a perp of the first perp dex or a spot pair? (HIP-3 ``dex:COIN`` names are trusted.)"""
        if ":" in coin:
            return True
        with self._coins_lock:
            if self._coins is None:
                perps = self.http.post_json("/info", {"type": "meta"}, weight=BASE_WEIGHT)
                spot = self.http.post_json("/info", {"type": "spotMeta"}, weight=BASE_WEIGHT)
                self._coins = {asset["name"] for asset in perps["universe"]} | {
                    pair["name"] for pair in spot["universe"]
                }
        return coin in self._coins

    def perps(self, contexts: bool) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Each perp of the first perp dex (``meta``'s universe) with its asset context (``metaAndAssetCtxs``, only
        when ``contexts``: one more weight-20 answer's worth of data, the same request count), in listing order."""
        if not contexts:
            meta, states = self.http.post_json("/info", {"type": "meta"}, weight=BASE_WEIGHT), None
        else:
            answer = self.http.post_json("/info", {"type": "metaAndAssetCtxs"}, weight=BASE_WEIGHT)
            meta, states = answer if isinstance(answer, list) and len(answer) == 2 else (None, None)
        universe = meta.get("universe") if isinstance(meta, dict) else None
        if not isinstance(universe, list) or (contexts and not isinstance(states, list)):
            raise SourceError(f"Hyperliquid answered {'metaAndAssetCtxs' if contexts else 'meta'} without a universe "
                              "of perps")
        return list(zip(universe, states or [{}] * len(universe), strict=False))

    def close(self) -> None:
        self.http.close()
