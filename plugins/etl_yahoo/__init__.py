"""Yahoo Finance source for market-etl: stocks, ETFs, indices and FX, with trading-calendar-aware gaps.

    [pipelines.stocks.source]
    plugin = "yahoo"
    symbols = ["AAPL", "SAP.DE", "600519.SS", "^GSPC", "EURUSD=X"]
    timeframes = ["1d"]          # 1m 2m 5m 15m 30m 90m 1h 1d 1w
    start = "2015-01-01"
    # adjusted = false           # true: OHLC scaled by Yahoo's adjusted close, no adj_close column
    # calendar = "auto"          # exchange-calendars code (XNYS, XETR, XSHG...) for gap detection
    # requests_per_minute = 30
    # dataset = "corporate_actions"   # dividends, splits, capital gains instead of bars

Timestamps are UTC. Intraday bars are keyed at their start exactly as Yahoo stamps them, which keeps
them right across DST (New York 09:30 is 14:30 UTC in winter and 13:30 UTC in summer). Daily bars are
keyed at the session's date, in the exchange's own timezone, at 00:00 UTC: the 2023-10-30 session of
XETRA is stored at 2023-10-30T00:00Z whatever time it opened, so daily rows sit on the 1d grid and a
date means the same trading day everywhere. Weekly bars are keyed at their Monday, 00:00 UTC.

With ``adjusted = false`` (the default) open/high/low/close are the prices as traded and ``adj_close``
is Yahoo's split- and dividend-adjusted close (daily and weekly; null intraday, where Yahoo has none).
Adjusted values are as Yahoo computed them when the row was fetched: after a new dividend or split,
backfill the history again to refresh them. Only regular-session bars are fetched.

Yahoo's quirks are handled: the live row Yahoo appends after the last bar is never stored, nor is the
bar still forming; rows with every price null are dropped and logged with their count; an empty
range (weekend, holiday) is no error; intraday windows older than Yahoo keeps (1m: 30 days, 2m-90m:
60 days, 1h: 730 days) are clamped with a warning, and 1m is fetched 7 days per request. An unknown
symbol fails its stream with the symbol named; 429s and 5xx are retried with backoff.

``base_url`` sends every Yahoo host yfinance calls to one address, with the host as the first path
segment (see ``etl_yahoo.session``). Yahoo's ``1mo`` bars are not offered: months have no fixed length
on the project's timeframe grid.
"""

import etl

from .source import CORPORATE_ACTIONS, YahooSource


@etl.hookimpl
def register_sources(register):
    register(YahooSource)


@etl.hookimpl
def register_datasets(register):
    register(CORPORATE_ACTIONS)
