"""The ``hyperliquid`` source: candles and funding history from ``POST /info``.

Both queries take a time range and answer with rows in ascending time, so windows are paged by time:
each page starts after the last row of the previous one, until a page comes back empty or the window
is covered. That works whatever the per-call cap is (the docs say 500 rows per time-range answer;
candles are also limited to the most recent 5000 per coin and interval, the API's horizon).

A window reaching back past that horizon cannot be served; rather than return less without a word,
the source logs a warning naming the coin, the interval and the earliest candle still available.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import etl
from etl.errors import ConfigError, PermanentError, SourceError, TransientError
from etl.log import get_logger
from etl.options import positive
from etl.timeframes import ceil_ts, floor_ts, iso, now_ms, timeframe_ms

from . import parsing
from .info import CANDLES_PER_EXTRA_WEIGHT, FUNDING_ROWS_PER_EXTRA_WEIGHT, InfoClient, is_spot

if TYPE_CHECKING:
    import polars as pl

log = get_logger("etl_hyperliquid")

DEFAULT_BASE_URL = "https://api.hyperliquid.xyz"
CANDLE_HORIZON = 5000
# Every candleSnapshot interval that is also a timeframe of this project; "1M" (calendar months) is not.
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w")


def _advance(cursor: int, following: int, query: str) -> int:
    """The next page's startTime; an answer that does not move past the last one would page forever."""
    if following <= cursor:
        raise SourceError(f"{query} answered startTime {iso(cursor)} with rows ending before it; paging cannot advance")
    return following


class HyperliquidSource(etl.Source):
    name = "hyperliquid"
    datasets = ("ohlcv", "funding", "trades")
    live = ("ohlcv", "trades")
    live_only = ("trades",)  # Hyperliquid serves no public trade history
    timeframes = INTERVALS
    network = True
    options = {
        "weight_per_minute": etl.Option(
            int, 1200, check=positive,
            help="request weight Hyperliquid allows per minute and IP, shared by every stream of the run",
        ),
        "attempts": etl.Option(
            int, 8, check=positive,
            help="tries per request before a transient failure (5xx, 429, timeout) fails the stream",
        ),
    }

    def __init__(self, config: etl.SourceConfig):
        super().__init__(config)
        self._client: InfoClient | None = None
        self._lock = threading.Lock()
        self._closer: Any = None

    def check(self) -> None:
        if self.config.dataset == "funding":
            for symbol in self.config.symbols:
                if is_spot(symbol):
                    raise ConfigError(f"Symbol {symbol!r} is a spot pair; funding applies to perpetuals only")

    def client(self) -> InfoClient:
        with self._lock:
            if self._client is None:
                self._client = InfoClient(self.base_url or DEFAULT_BASE_URL, self.settings["weight_per_minute"],
                                          self.settings["attempts"])
            return self._client

    def list_symbols(self, volumes: bool = False) -> list[etl.Listing]:
        """The perps by coin, ``delisted`` where Hyperliquid flags them ``isDelisted`` (it keeps them listed);
        ``volumes``: ``dayNtlVlm``, the 24h notional volume in USDC. Spot pairs are not listed (type them)."""
        return [etl.Listing(asset["name"], "delisted" if asset.get("isDelisted") else "trading",
                            float(state["dayNtlVlm"]) if "dayNtlVlm" in state else None)
                for asset, state in self.client().perps(volumes)]

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        if stream.dataset in self.live_only:
            raise PermanentError(f"hyperliquid serves no {stream.dataset} history: follow it live with etl stream")
        try:
            for page in self._pages(stream, start, end):
                yield parsing.within(page, start, end)
        except SourceError as exc:
            raise type(exc)(f"hyperliquid {stream.symbol}: {exc}") from None

    def _pages(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        try:
            if stream.dataset == "ohlcv":
                yield from self._candles(stream, start, end)
            else:
                yield from self._funding(stream, start, end)
        except TransientError:
            # Hyperliquid may answer an unknown coin with 500 ``null``: once retries are spent, say so.
            self._require_known(stream.symbol)
            raise

    def _candles(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        assert stream.timeframe is not None
        coin, interval, step = stream.symbol, stream.timeframe, timeframe_ms(stream.timeframe)
        cursor = start
        while cursor < end:
            body = {"type": "candleSnapshot",
                    "req": {"coin": coin, "interval": interval, "startTime": cursor, "endTime": end - 1}}
            rows = self.client().rows(body, CANDLES_PER_EXTRA_WEIGHT)
            if cursor == start:
                if not rows:
                    self._require_known(coin)
                self._check_horizon(stream, start, end, min((row["t"] for row in rows), default=None))
            if not rows:
                return
            yield parsing.candles(rows, now_ms(), f"candle of {coin} {interval}")
            cursor = _advance(cursor, max(row["t"] for row in rows) + step, "candleSnapshot")

    def _require_known(self, coin: str) -> None:
        """An empty answer for a name Hyperliquid does not list is a mistake in the pipeline, not a quiet day."""
        if not self.client().knows(coin):
            raise PermanentError(
                f"unknown coin {coin!r}: not a Hyperliquid perp (meta) nor a spot pair (spotMeta); "
                "spot pairs are named like PURR/USDC or @107"
            )

    def _check_horizon(self, stream: etl.Stream, start: int, end: int, first_t: int | None) -> None:
        """Warn when the window starts before the oldest candle the API still serves, and count the candles
        of the window it cannot serve (``candles_beyond_horizon``).

        Only windows older than the horizon (the newest 5000 candles) are examined, so a coin listed
        recently, or an interval without trades, is not reported. An empty first page costs one more
        request, to find the earliest candle there is.
        """
        assert stream.timeframe is not None
        coin, interval, step = stream.symbol, stream.timeframe, timeframe_ms(stream.timeframe)
        if start >= floor_ts(now_ms(), interval) - (CANDLE_HORIZON - 1) * step:
            return
        if first_t is None:
            probe = {"type": "candleSnapshot",
                     "req": {"coin": coin, "interval": interval, "startTime": start, "endTime": now_ms()}}
            first_t = min((row["t"] for row in self.client().rows(probe, CANDLES_PER_EXTRA_WEIGHT)), default=None)
        if first_t is not None and first_t <= floor_ts(start, interval):
            return
        served_from = min(first_t if first_t is not None else end, end)
        self.count(stream, "candles_beyond_horizon", max(0, (served_from - ceil_ts(start, interval)) // step))
        log.warning(
            "hyperliquid candles older than the API keeps",
            coin=coin, interval=interval, requested_from=iso(start),
            earliest_available=iso(first_t) if first_t is not None else "none",
            hint=f"the API serves only the most recent {CANDLE_HORIZON} candles per coin and interval; "
                 "the hyperliquid_archive source rebuilds older candles from mid prices",
        )

    def _funding(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        coin, cursor = stream.symbol, start
        while cursor < end:
            body = {"type": "fundingHistory", "coin": coin, "startTime": cursor, "endTime": end - 1}
            rows = self.client().rows(body, FUNDING_ROWS_PER_EXTRA_WEIGHT)
            if not rows and cursor == start:
                self._require_known(coin)
            if not rows:
                return
            yield parsing.funding(rows, f"funding of {coin}")
            cursor = _advance(cursor, max(row["time"] for row in rows) + 1, "fundingHistory")

    # --- live (etl stream) ---

    def subscriptions(self, streams: list[etl.Stream]) -> list[Any]:
        from . import live

        return live.subscriptions(self.settings, streams)

    def parse_live(self, message: str | bytes, subscription: Any) -> Any:
        """Candles closed by a later candle (``live.CandleCloser``); the connection thread alone calls it."""
        if self._closer is None:
            from .live import CandleCloser

            self._closer = CandleCloser()
        return self._closer.parse(message, subscription)

    def live_frame(self, stream: etl.Stream, records: list[Any]) -> pl.DataFrame:
        from .live import trades_frame

        return trades_frame(records)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
