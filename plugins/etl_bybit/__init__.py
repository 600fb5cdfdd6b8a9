"""Bybit source: OHLCV, funding rates and open interest from Bybit's v5 public REST API, through ccxt.

    [pipelines.eth.source]
    plugin = "bybit"
    market = "linear"               # spot (default) | linear | inverse
    dataset = "ohlcv"               # ohlcv | funding | open_interest (the last two: linear or inverse)
    symbols = ["BTCUSDT", "ETHUSDT"]
    timeframes = ["1m"]
    start = "2024-01-01"

- ``ohlcv`` keeps Bybit's ``turnover`` (in the quote coin; in the base coin for inverse contracts, whose
  ``volume`` counts USD contracts). Bars are read in windows of 1000, oldest window first, and sorted
  ascending although Bybit lists newest first. A bar Bybit still considers open (its clock is read once
  per run) is never emitted; the next run picks it up. Nothing is asked before the market's launch.
- ``funding``: every settlement, in windows of 200 of the market's current funding interval; when the
  interval was shorter in the past, the window is paged back until it is complete.
- ``open_interest``: sampled every ``period`` (5m 15m 30m 1h 4h 1d; default 1h), following
  ``nextPageCursor``.

Rate limits: Bybit allows 600 requests per 5 seconds per IP; every request takes a token from a bucket
shared by every stream of the process and sized so that no 5-second window can pass that
(``rate_limit`` lowers it). Every answer's ``X-Bapi-Limit-Status`` (requests left of ``X-Bapi-Limit``)
holds requests while the window is full, other clients' requests included; a smaller ``X-Bapi-Limit``
than 600 reshapes the bucket (taken as per 5 seconds: the headers do not name the window).
Bybit's "too many visits" (retCode 10006), HTTP 403 "access too frequent",
5xx, timeouts and cut-off answers are retried with backoff; an unknown symbol or a request Bybit rejects
(retCode 10001) fails that stream at once, with Bybit's message.

Live (``etl stream``): ``ohlcv`` of every market from the public websocket's ``kline.<interval>.<symbol>``
topics, a bar stored once Bybit confirms it (``confirm: true``); ``trades`` (``publicTrade.<symbol>``, every
market) and ``liquidations`` (``allLiquidation.<symbol>``, linear and inverse), live only: Bybit serves no
history of either, so the windows a connection missed are recorded gaps, and ``etl run`` refuses them;
``ws_url`` is the whole endpoint (default: ``base_url`` as ``ws://.../v5/public/<market>``, or
``wss://stream.bybit.com/v5/public/<market>``).
"""

import etl

from .source import BybitSource

__all__ = ["BybitSource"]


@etl.hookimpl
def register_sources(register):
    register(BybitSource)
