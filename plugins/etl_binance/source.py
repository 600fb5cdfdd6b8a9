"""The Binance source: spot (``api.binance.com/api/v3``) and USD-M futures (``fapi.binance.com``) through ccxt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from etl_ccxt.budget import Budget
from etl_ccxt.frames import Field, rows_to_frame
from etl_ccxt.paging import windows
from etl_ccxt.source import COMMON_OPTIONS, ExchangeSource, api_name

import etl
from etl.log import get_logger
from etl.timeframes import DAY, MINUTE, iso, next_bar, timeframe_ms

if TYPE_CHECKING:
    import polars as pl

log = get_logger("etl_binance")

KLINE_FIELDS = (
    Field("ts", 0, "ms"), Field("open", 1), Field("high", 2), Field("low", 3), Field("close", 4), Field("volume", 5),
    Field("quote_volume", 7), Field("trades", 8, "i64"), Field("taker_buy_volume", 9),
    Field("taker_buy_quote_volume", 10),
)
FUNDING_FIELDS = (Field("ts", "fundingTime", "ms"), Field("funding_rate", "fundingRate"),
                  Field("mark_price", "markPrice", optional=True))
OPEN_INTEREST_FIELDS = (
    Field("ts", "timestamp", "ms"), Field("open_interest", "sumOpenInterest"),
    Field("open_interest_value", "sumOpenInterestValue"),
    Field("circulating_supply", "CMCCirculatingSupply", optional=True),
)
SPOT_WEIGHTS = {"exchangeInfo": 20, "klines": 2}
# Spot klines cost 2 at any limit, so pages are full; USD-M klines cost by limit (1 below 100, 2 below 500,
# 5 to 1000, 10 above) and 499 rows for 2 is the most candles per unit of weight.
KLINES = {"spot": ("publicGetKlines", 1000), "usdm": ("fapiPublicGetKlines", 499)}
FUNDING_PAGE = 1000
OPEN_INTEREST_PAGE = 500
OPEN_INTEREST_HISTORY = 30 * DAY
PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")


def futures_kline_weight(limit: int) -> int:
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class BinanceSource(ExchangeSource):
    name = "binance"
    exchange_id = "binance"
    datasets = ("ohlcv", "funding", "open_interest")
    live = ("ohlcv",)
    timeframes = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w", "1M")
    market_types = {"spot": "spot", "usdm": "linear"}
    derivative_markets = ("usdm",)
    options = {
        "market": etl.Option(str, "spot", help="spot, or usdm for USD-M perpetual futures", choices=("spot", "usdm")),
        "period": etl.Option(str, "1h", help="open_interest: sampling period", choices=PERIODS),
        **COMMON_OPTIONS,
    }

    def budgets(self) -> dict[str, Budget]:
        if self.market == "spot":
            return {"weight": Budget(self.settings["rate_limit"] or 6000, 60)}
        return {
            "weight": Budget(self.settings["rate_limit"] or 2400, 60),
            "funding": Budget(500, 300),  # fundingRate shares 500 requests per 5 minutes with fundingInfo
            "open_interest": Budget(1000, 300),  # openInterestHist: weight 0, 1000 requests per 5 minutes
        }

    def request_cost(self, exchange: Any, api: Any, method: str, path: str, params: dict[str, Any],
                     config: dict[str, Any]) -> tuple[tuple[str, float], ...]:
        section = api_name(api)
        if path == "fundingRate":
            return (("funding", 1),)
        if section == "fapiData":
            return (("open_interest", 1),)
        if section == "fapiPublic" and path == "klines":
            return (("weight", futures_kline_weight(int(params.get("limit", 500)))),)
        return (("weight", SPOT_WEIGHTS.get(path, 1) if section == "public" else 1),)

    def time_params(self, exchange: Any) -> dict[str, Any]:
        return {} if self.market == "spot" else {"type": "swap"}

    def fetch_ohlcv(self, stream: etl.Stream, market: dict[str, Any], start: int, end: int) -> Iterator[pl.DataFrame]:
        """Pages forward from ``startTime`` (Binance returns the oldest ``limit`` bars from it, ascending)."""
        method, page = KLINES[self.market]
        step = timeframe_ms(stream.timeframe or "")
        cursor = start
        while cursor < end:
            want = min(page, -(-(end - cursor) // step))
            params = {"symbol": market["id"], "interval": stream.timeframe, "startTime": cursor,
                      "endTime": end - 1, "limit": want}
            asked_at = self.asked_at()
            rows = self.request(stream, method, params)
            if not rows:
                return
            yield self.closed_bars(stream, rows_to_frame(rows, KLINE_FIELDS), asked_at)
            if len(rows) < want:
                return
            cursor = next_bar(int(rows[-1][0]), stream.timeframe or "")

    def fetch_funding(self, stream: etl.Stream, market: dict[str, Any], start: int, end: int) -> Iterator[pl.DataFrame]:
        """Pages forward from ``startTime`` (inclusive bounds, oldest first); the next page starts 1 ms later."""
        cursor = start
        while cursor < end:
            params = {"symbol": market["id"], "startTime": cursor, "endTime": end - 1, "limit": FUNDING_PAGE}
            rows = self.request(stream, "fapiPublicGetFundingRate", params)
            if not rows:
                return
            yield rows_to_frame(rows, FUNDING_FIELDS)
            if len(rows) < FUNDING_PAGE:
                return
            cursor = int(rows[-1]["fundingTime"]) + 1

    def fetch_open_interest(self, stream: etl.Stream, market: dict[str, Any], start: int,
                            end: int) -> Iterator[pl.DataFrame]:
        """Windows of 500 periods; only the last 30 days exist, and an older startTime is an error (-1130)."""
        period = self.settings["period"]
        earliest = self.client.server_now() - OPEN_INTEREST_HISTORY + MINUTE
        if start < earliest:
            log.warning("open interest history starts later", stream=stream.label, asked=iso(start),
                        available_from=iso(earliest), reason="Binance keeps the last 30 days only")
            start = earliest
        for lo, hi in windows(start, end, OPEN_INTEREST_PAGE * timeframe_ms(period)):
            params = {"symbol": market["id"], "period": period, "startTime": lo, "endTime": hi - 1,
                      "limit": OPEN_INTEREST_PAGE}
            rows = self.request(stream, "fapiDataGetOpenInterestHist", params)
            if rows:
                yield rows_to_frame(rows, OPEN_INTEREST_FIELDS)

    # --- live (etl stream) ---

    def subscriptions(self, streams: list[etl.Stream]) -> list[Any]:
        from . import live

        return live.subscriptions(self.settings, self.market, streams)

    def parse_live(self, message: str | bytes, subscription: Any) -> Any:
        from . import live

        return live.parse(message, subscription)
