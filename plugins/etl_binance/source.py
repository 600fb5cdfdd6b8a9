"""The Binance source: spot (``api.binance.com/api/v3``) and USD-M futures (``fapi.binance.com``) through ccxt."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from etl_ccxt.budget import Budget, reshape
from etl_ccxt.frames import Field, rows_to_frame
from etl_ccxt.paging import windows
from etl_ccxt.source import COMMON_OPTIONS, ExchangeSource, api_name

import etl
from etl.log import get_logger
from etl.ratelimit import WindowCount
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
# 24hr: every symbol's, the weight of 80
SPOT_WEIGHTS = {"exchangeInfo": 20, "klines": 2, "aggTrades": 4, "ticker/24hr": 80}
# Spot klines cost 2 at any limit, so pages are full; USD-M klines cost by limit (1 below 100, 2 below 500,
# 5 to 1000, 10 above) and 499 rows for 2 is the most candles per unit of weight.
KLINES = {"spot": ("publicGetKlines", 1000), "usdm": ("fapiPublicGetKlines", 499)}
AGG_TRADES = {"spot": "publicGetAggTrades", "usdm": "fapiPublicGetAggTrades"}
TRADES_PAGE = 1000
TRADES_WINDOW = 3_600_000 - 1  # startTime and endTime must be less than an hour apart
FUNDING_PAGE = 1000
OPEN_INTEREST_PAGE = 500
OPEN_INTEREST_HISTORY = 30 * DAY
PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
DOCUMENTED_WEIGHT = {"spot": 6000, "usdm": 2400}


class WeightLimit(NamedTuple):
    """A REQUEST_WEIGHT limit, and the header that reports the weight it counts (lower case)."""

    budget: Budget
    header: str


def weight_limits(rate_limits: list[dict[str, Any]]) -> list[WeightLimit]:
    """The REQUEST_WEIGHT limits of an ``exchangeInfo.rateLimits``: ``{"interval": "MINUTE", "intervalNum": 1,
    "limit": 6000}`` is 6000 per 60 s, counted in ``X-MBX-USED-WEIGHT-1M``."""
    limits = []
    for entry in rate_limits:
        if entry.get("rateLimitType") == "REQUEST_WEIGHT" and entry.get("interval") in INTERVAL_SECONDS:
            number = int(entry.get("intervalNum") or 1)
            budget = Budget(float(entry["limit"]), number * INTERVAL_SECONDS[entry["interval"]])
            limits.append(WeightLimit(budget, f"x-mbx-used-weight-{number}{entry['interval'][0].lower()}"))
    return limits


def trades_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """``aggTrades`` objects as trades: ``m`` (the buyer was the maker) means the aggressor sold."""
    import polars as pl

    raw = pl.from_dicts(rows, schema={"T": pl.Int64, "a": pl.Int64, "p": pl.String, "q": pl.String, "m": pl.Boolean})
    return raw.select(
        pl.col("T").alias("ts"), pl.col("a").cast(pl.String).alias("trade_id"),
        pl.col("p").cast(pl.Float64).alias("price"), pl.col("q").cast(pl.Float64).alias("size"),
        pl.when(pl.col("m")).then(pl.lit("sell")).otherwise(pl.lit("buy")).alias("side"),
    )


def futures_kline_weight(limit: int) -> int:
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class BinanceSource(ExchangeSource):
    name = "binance"
    exchange_id = "binance"
    datasets = ("ohlcv", "funding", "open_interest", "trades", "liquidations")
    live = ("ohlcv", "trades", "liquidations")
    live_only = ("liquidations",)
    live_sequence = {"trades": "trade_id"}  # aggregate trade ids are consecutive
    timeframes = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w", "1M")
    market_types = {"spot": "spot", "usdm": "linear"}
    derivative_markets = ("usdm",)
    options = {
        "market": etl.Option(str, "spot", help="spot, or usdm for USD-M perpetual futures", choices=("spot", "usdm")),
        "period": etl.Option(str, "1h", help="open_interest: sampling period", choices=PERIODS),
        **COMMON_OPTIONS,
    }

    def __init__(self, config: etl.SourceConfig):
        super().__init__(config)
        documented = WeightLimit(Budget(DOCUMENTED_WEIGHT[self.market], 60), "x-mbx-used-weight-1m")
        self.weights = [(documented, WindowCount(documented.budget.safe_limit, 60))]
        self.counts["weight"] = [self.weights[0][1]]

    def budgets(self) -> dict[str, Budget]:
        weight = Budget(self.settings["rate_limit"] or DOCUMENTED_WEIGHT[self.market], 60)
        if self.market == "spot":
            return {"weight": weight}
        return {
            "weight": weight,
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
        if section == "fapiPublic" and path == "aggTrades":
            return (("weight", 20),)
        if section == "fapiPublic" and path == "ticker/24hr":
            return (("weight", 40),)  # every symbol's
        return (("weight", SPOT_WEIGHTS.get(path, 1) if section == "public" else 1),)

    def follow(self, api: Any, path: str, response: Any, headers: Mapping[str, str]) -> None:
        """Pace by the weight limits ``exchangeInfo`` advertises (they differ per address and have changed over
        time), and stay under the weight the ``X-MBX-USED-WEIGHT-*`` headers count, other clients' included."""
        if path == "exchangeInfo" and isinstance(response, dict):
            self.adopt(weight_limits(response.get("rateLimits") or []))
        used = {name.lower(): value for name, value in headers.items() if name.lower().startswith("x-mbx-used-weight")}
        for limit, count in self.weights:
            if limit.header in used:
                count.report(float(used[limit.header]), self.unanswered("weight"))

    def adopt(self, advertised: list[WeightLimit]) -> None:
        """Reshape the weight bucket and counts to the advertised limits (and ``rate_limit`` per minute, if set);
        the new counts start with the weight already sent (``exchangeInfo`` itself)."""
        if not advertised or advertised == [limit for limit, _ in self.weights]:
            return
        seen = self.weights[0][1]
        self.weights = [(limit, seen.reshaped(limit.budget.safe_limit, limit.budget.window_seconds))
                        for limit in advertised]
        self.counts["weight"] = [count for _, count in self.weights]
        own = [Budget(self.settings["rate_limit"], 60)] if self.settings["rate_limit"] else []
        reshape(self.limiters["weight"], [limit.budget for limit in advertised] + own)
        log.info("pacing by the advertised weight limits", source=self.name, market=self.market,
                 limits=", ".join(str(limit.budget) for limit in advertised))

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

    def fetch_trades(self, stream: etl.Stream, market: dict[str, Any], start: int, end: int) -> Iterator[pl.DataFrame]:
        """Aggregate trades (``aggTrades``): hour windows by time while each holds less than a page, then by
        ``fromId`` from the last trade of a full page, so a busy hour never loses the trades past its 1000th."""
        cursor = start
        while cursor < end:
            window_end = min(cursor + TRADES_WINDOW, end)
            params = {"symbol": market["id"], "startTime": cursor, "endTime": window_end - 1, "limit": TRADES_PAGE}
            rows = self.request(stream, AGG_TRADES[self.market], params)
            yield trades_frame(rows)
            if len(rows) == TRADES_PAGE:
                yield from self._trades_from(stream, market, rows[-1]["a"] + 1, end)
                return
            cursor = window_end

    def _trades_from(self, stream: etl.Stream, market: dict[str, Any], first_id: int,
                     end: int) -> Iterator[pl.DataFrame]:
        """Pages by ``fromId`` until a trade at or after ``end``, or the newest trade there is."""
        while True:
            params = {"symbol": market["id"], "fromId": first_id, "limit": TRADES_PAGE}
            rows = self.request(stream, AGG_TRADES[self.market], params)
            kept = [row for row in rows if row["T"] < end]
            yield trades_frame(kept)
            if len(kept) < len(rows) or len(rows) < TRADES_PAGE:
                return
            first_id = rows[-1]["a"] + 1

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

    def live_frame(self, stream: etl.Stream, records: list[Any]) -> pl.DataFrame:
        from . import live

        return live.frame(stream, records)
