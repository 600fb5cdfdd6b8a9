"""The generic ``ccxt`` source: OHLCV from any exchange ccxt supports, through ccxt's unified ``fetch_ohlcv``.

Requests are metered with ccxt's own cost table of the exchange (``rateLimit`` milliseconds per cost unit),
through the same shared token buckets as the dedicated sources.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import etl
from etl.errors import ConfigError, PermanentError, TransientError
from etl.timeframes import next_bar

from .budget import Budget
from .frames import Field, rows_to_frame
from .source import COMMON_OPTIONS, ExchangeSource

if TYPE_CHECKING:
    import polars as pl

OHLCV_FIELDS = (Field("ts", 0, "ms"), Field("open", 1), Field("high", 2), Field("low", 3), Field("close", 4),
                Field("volume", 5))
DEFAULT_PAGE = 100


class CcxtSource(ExchangeSource):
    name = "ccxt"
    datasets = ("ohlcv",)
    options = {
        "exchange": etl.Option(str, help="ccxt exchange id, e.g. okx, kraken, coinbase (see ccxt.exchanges)"),
        "market": etl.Option(str, "spot", help="market type read when an exchange uses one id for several",
                             choices=("spot", "swap", "future")),
        "exchange_options": etl.Option(dict, {}, help="ccxt options of the exchange, e.g. "
                                       "{ fetchMarkets = { types = [\"spot\"] } } to load fewer markets"),
        **COMMON_OPTIONS,
    }

    @property
    def exchange_id(self) -> str:  # type: ignore[override]
        return self.settings["exchange"]

    def _ccxt_class(self) -> Any:
        import ccxt

        if self.exchange_id not in ccxt.exchanges:
            close = difflib.get_close_matches(self.exchange_id, ccxt.exchanges, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see ccxt.exchanges for the ids"
            raise ConfigError(f"ccxt has no exchange {self.exchange_id!r} (key 'exchange'){hint}")
        return getattr(ccxt, self.exchange_id)

    def check(self) -> None:
        exchange = self._ccxt_class()()
        if not exchange.has.get("fetchOHLCV"):
            raise ConfigError(f"ccxt exchange {self.exchange_id!r} offers no OHLCV (fetchOHLCV)")
        offered = list(exchange.timeframes or {})
        for timeframe in self.config.timeframes:
            if timeframe not in offered:
                raise ConfigError(f"ccxt exchange {self.exchange_id!r} has no timeframe {timeframe!r} (key "
                                  f"'timeframes'); it offers: {', '.join(offered)}")

    def ccxt_options(self) -> dict[str, Any]:
        return dict(self.settings["exchange_options"])

    def budgets(self) -> dict[str, Budget]:
        per_minute = 60_000 / (self._ccxt_class()().rateLimit or 1000)
        return {"cost": Budget(self.settings["rate_limit"] or per_minute, 60)}

    def request_cost(self, exchange: Any, api: Any, method: str, path: str, params: dict[str, Any],
                     config: dict[str, Any]) -> tuple[tuple[str, float], ...]:
        return (("cost", exchange.calculate_rate_limiter_cost(api, method, path, params, config)),)

    def time_params(self, exchange: Any) -> dict[str, Any] | None:
        return {} if exchange.has.get("fetchTime") else None

    def lists(self, market: dict[str, Any]) -> bool:
        return market.get("type") == self.market

    def resolve(self, symbol: str) -> dict[str, Any]:
        """The market the exchange calls ``symbol`` (its own id, or ccxt's unified ``BTC/USDT``) of type ``market``."""
        unified = self.client.markets().get(symbol)
        candidates = self.client.markets_by_id().get(symbol) or ([unified] if unified else [])
        for market in candidates:
            if market.get("type") == self.market:
                return market
        if candidates:
            types = ", ".join(sorted({str(market.get("type")) for market in candidates}))
            raise PermanentError(f"ccxt {self.exchange_id}: {symbol!r} is a {types} market, not {self.market}; "
                                 f"set market accordingly")
        return super().resolve(symbol)

    def fetch_ohlcv(self, stream: etl.Stream, market: dict[str, Any], start: int, end: int) -> Iterator[pl.DataFrame]:
        """Pages forward from ``since`` until an empty page; ccxt returns bars oldest first."""
        timeframe = stream.timeframe or ""
        what = f"{self.name} {self.exchange_id} {stream.label} (fetch_ohlcv)"
        cursor = start
        while cursor < end:
            asked_at = self.asked_at()
            rows = self.client.call(lambda exchange, since=cursor: _ohlcv(exchange, market, timeframe, since, what),
                                    what)
            rows = [row for row in rows if cursor <= row[0] < end]
            if not rows:
                return
            yield self.closed_bars(stream, rows_to_frame(rows, OHLCV_FIELDS), asked_at)
            cursor = next_bar(int(rows[-1][0]), timeframe)


def _ohlcv(exchange: Any, market: dict[str, Any], timeframe: str, since: int, what: str) -> list[list[Any]]:
    rows = exchange.fetch_ohlcv(market["symbol"], timeframe, since=since, limit=_page(exchange, market))
    if not isinstance(rows, list):
        raise TransientError(f"{what}: unexpected answer: {str(rows)[:200]}")
    return rows


def _page(exchange: Any, market: dict[str, Any]) -> int:
    """The exchange's OHLCV page limit from ccxt's ``features`` table (per market type and sub-type)."""
    section = (exchange.features or {}).get(market.get("type")) or {}
    if market.get("subType") in section:
        section = section[market["subType"]] or {}
    limit = (section.get("fetchOHLCV") or {}).get("limit")
    return int(limit) if limit else DEFAULT_PAGE
