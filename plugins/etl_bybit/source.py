"""The Bybit source: v5 market endpoints (``api.bybit.com/v5/market/...``) through ccxt, for spot, linear and
inverse markets.

Bybit lists newest first and, when a range holds more rows than ``limit``, returns the newest ones. The
source asks for windows small enough to fit one page (1000 bars, 200 funding intervals), walking them
oldest to newest so each batch is ascending and checkpoints advance as it goes; inside a window it keeps
paging back (funding intervals change over time) or follows ``nextPageCursor`` (open interest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from etl_ccxt.budget import Budget, reshape
from etl_ccxt.frames import Field, rows_to_frame
from etl_ccxt.paging import windows
from etl_ccxt.source import COMMON_OPTIONS, ExchangeSource

import etl
from etl.log import get_logger
from etl.ratelimit import WindowCount
from etl.timeframes import MINUTE, floor_ts, timeframe_ms

if TYPE_CHECKING:
    import polars as pl

log = get_logger("etl_bybit")

DOCUMENTED_REQUESTS = 600  # per IP and 5 seconds, every endpoint alike
WINDOW_SECONDS = 5
KLINE_FIELDS = (
    Field("ts", 0, "ms"), Field("open", 1), Field("high", 2), Field("low", 3), Field("close", 4), Field("volume", 5),
    Field("turnover", 6),
)
FUNDING_FIELDS = (Field("ts", "fundingRateTimestamp", "ms"), Field("funding_rate", "fundingRate"))
OPEN_INTEREST_FIELDS = (Field("ts", "timestamp", "ms"), Field("open_interest", "openInterest"))
KLINE_PAGE = 1000
FUNDING_PAGE = 200
OPEN_INTEREST_PAGE = 200
OPEN_INTEREST_WINDOW = 5 * OPEN_INTEREST_PAGE  # intervals per window, read through the cursor
INTERVALS = {
    "1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "2h": "120", "4h": "240", "6h": "360",
    "12h": "720", "1d": "D", "1w": "W",
}
OPEN_INTEREST_INTERVALS = {"5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "4h": "4h", "1d": "1d"}


def _ts(row: Any, key: int | str) -> int:
    return int(row[key])


class BybitSource(ExchangeSource):
    name = "bybit"
    exchange_id = "bybit"
    datasets = ("ohlcv", "funding", "open_interest", "trades", "liquidations")
    live = ("ohlcv", "trades", "liquidations")
    live_only = ("trades", "liquidations")  # no REST history: see ``live``
    timeframes = tuple(INTERVALS)
    market_types = {"spot": "spot", "linear": "linear", "inverse": "inverse"}
    derivative_markets = ("linear", "inverse")
    options = {
        "market": etl.Option(str, "spot", help="spot, linear (USDT/USDC contracts) or inverse (coin-margined)",
                             choices=("spot", "linear", "inverse")),
        "period": etl.Option(str, "1h", help="open_interest: sampling interval",
                             choices=tuple(OPEN_INTEREST_INTERVALS)),
        **COMMON_OPTIONS,
    }

    def __init__(self, config: etl.SourceConfig):
        super().__init__(config)
        self.advertised = float(DOCUMENTED_REQUESTS)
        self.counts["requests"] = [WindowCount(Budget(self.advertised, WINDOW_SECONDS).safe_limit, WINDOW_SECONDS)]

    def budgets(self) -> dict[str, Budget]:
        return {"requests": Budget(self.settings["rate_limit"] or DOCUMENTED_REQUESTS, WINDOW_SECONDS)}

    def follow(self, api: Any, path: str, response: Any, headers: Mapping[str, str]) -> None:
        """Every answer says how many requests are left (``X-Bapi-Limit-Status``) of the limit (``X-Bapi-Limit``)
        in the current window: stay under what is left, and pace by a limit smaller than the documented one.

        The headers do not name the window; it is taken to be the documented IP window of 5 seconds. Going
        past it costs a 10-minute ban (HTTP 403), so a smaller advertised limit is believed, a larger one not.
        """
        said = {name.lower(): value for name, value in headers.items()}
        if "x-bapi-limit" not in said or "x-bapi-limit-status" not in said:
            return
        limit = min(float(said["x-bapi-limit"]), DOCUMENTED_REQUESTS)
        if limit != self.advertised:
            self.adopt(limit)
        self.counts["requests"][0].report(limit - float(said["x-bapi-limit-status"]), self.unanswered("requests"))

    def adopt(self, limit: float) -> None:
        """Reshape the request bucket and count to an advertised limit (and ``rate_limit``, if set)."""
        self.advertised = limit
        budget = Budget(limit, WINDOW_SECONDS)
        self.counts["requests"] = [self.counts["requests"][0].reshaped(budget.safe_limit, WINDOW_SECONDS)]
        own = [Budget(self.settings["rate_limit"], WINDOW_SECONDS)] if self.settings["rate_limit"] else []
        reshape(self.limiters["requests"], [budget, *own])
        log.info("pacing by the advertised request limit", source=self.name, market=self.market,
                 limit=str(budget))

    def request_cost(self, exchange: Any, api: Any, method: str, path: str, params: dict[str, Any],
                     config: dict[str, Any]) -> tuple[tuple[str, float], ...]:
        return (("requests", 1),)

    def fetch_ohlcv(self, stream: etl.Stream, market: dict[str, Any], start: int, end: int) -> Iterator[pl.DataFrame]:
        timeframe = stream.timeframe or ""
        step = timeframe_ms(timeframe)
        base = {"category": self.market, "symbol": market["id"], "interval": INTERVALS[timeframe]}
        for lo, hi in windows(self.listed_from(market, start, timeframe), end, KLINE_PAGE * step):
            asked_at = self.asked_at()
            rows = self._newest_first(stream, "publicGetV5MarketKline", base, ("start", "end"), lo, hi,
                                      min(KLINE_PAGE, -(-(hi - lo) // step)), 0)
            if rows:
                yield self.closed_bars(stream, rows_to_frame(rows, KLINE_FIELDS), asked_at)

    def fetch_funding(self, stream: etl.Stream, market: dict[str, Any], start: int, end: int) -> Iterator[pl.DataFrame]:
        interval = int(market["info"].get("fundingInterval") or 480) * MINUTE
        base = {"category": self.market, "symbol": market["id"]}
        for lo, hi in windows(self.listed_from(market, start), end, FUNDING_PAGE * interval):
            rows = self._newest_first(stream, "publicGetV5MarketFundingHistory", base, ("startTime", "endTime"),
                                      lo, hi, FUNDING_PAGE, "fundingRateTimestamp")
            if rows:
                yield rows_to_frame(rows, FUNDING_FIELDS)

    def fetch_open_interest(self, stream: etl.Stream, market: dict[str, Any], start: int,
                            end: int) -> Iterator[pl.DataFrame]:
        period = self.settings["period"]
        base = {"category": self.market, "symbol": market["id"], "intervalTime": OPEN_INTEREST_INTERVALS[period],
                "limit": OPEN_INTEREST_PAGE}
        for lo, hi in windows(self.listed_from(market, start), end, OPEN_INTEREST_WINDOW * timeframe_ms(period)):
            rows: list[Any] = []
            cursor = ""
            while True:
                params = {**base, "startTime": lo, "endTime": hi - 1, **({"cursor": cursor} if cursor else {})}
                result = self._result(stream, "publicGetV5MarketOpenInterest", params)
                rows.extend(result["list"])
                cursor = result.get("nextPageCursor") or ""
                if not cursor or not result["list"]:
                    break
            if rows:
                yield rows_to_frame(sorted(rows, key=_by("timestamp")), OPEN_INTEREST_FIELDS)

    def listed_from(self, market: dict[str, Any], start: int, timeframe: str | None = None) -> int:
        """``start``, or the market's launch if later: no requests for the years before a listing."""
        created = market.get("created")
        if not created or created <= start:
            return start
        return floor_ts(created, timeframe) if timeframe else created

    def _newest_first(self, stream: etl.Stream, method: str, base: dict[str, Any], keys: tuple[str, str], lo: int,
                      hi: int, limit: int, ts_key: int | str) -> list[Any]:
        """Every row of ``[lo, hi)`` oldest first, from an endpoint listing the newest ``limit`` of a range.

        A full page whose oldest row is still after ``lo`` means older rows were cut off: ask again below it.
        """
        start_key, end_key = keys
        rows: list[Any] = []
        top = hi - 1
        while top >= lo:
            page = self._result(stream, method, {**base, start_key: lo, end_key: top, "limit": limit})["list"]
            rows.extend(page)
            if len(page) < limit:
                break
            oldest = min(_ts(row, ts_key) for row in page)
            if oldest <= lo:
                break
            top = oldest - 1
        return sorted(rows, key=_by(ts_key))

    def _result(self, stream: etl.Stream, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The ``result`` object of an answer (ccxt has already turned a non-zero ``retCode`` into an error)."""
        return self.request(stream, method, params, valid=_has_list)["result"]

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


def _has_list(answer: Any) -> bool:
    return isinstance(answer, dict) and isinstance(answer.get("result"), dict) and isinstance(
        answer["result"].get("list"), list)


def _by(key: int | str) -> Callable[[Any], int]:
    return lambda row: _ts(row, key)
