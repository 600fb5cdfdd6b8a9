"""Polygon.io source for market-etl: aggregate bars of stocks, crypto, FX and indices.

    [pipelines.stocks.source]
    plugin = "polygon"
    symbols = ["AAPL", "X:BTCUSD"]       # Polygon's tickers (crypto X:, FX C:, indices I:)
    timeframes = ["1h", "1d"]            # 1m 2m 3m 5m 10m 15m 30m 1h 2h 4h 6h 8h 12h 1d
    start = "2024-01-01"
    api_key = "${POLYGON_API_KEY}"       # from the environment: never written in the file
    # adjusted = true                    # false: prices as traded, not adjusted for splits
    # requests_per_minute = 5            # the free tier's budget; raise it on a paid plan

Bars come from ``/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`` with ``sort=asc`` and
``limit=50000``, following ``next_url`` page by page. The key travels in the ``Authorization: Bearer``
header of every request, ``next_url`` pages included (``next_url`` does not carry it), so it is never part of
a URL and cannot reach a log line, an error message or the ledger. ``vw`` (volume-weighted price) and ``n``
(trades) are kept as the extras ``vwap`` and ``trades``. Daily bars are keyed at 00:00 UTC of their date
(Polygon stamps a stock's day at midnight New York time). Only closed bars are stored.

A bad key (HTTP 401) or a plan without the data (403) fails the stream at once with Polygon's own message; 429
and 5xx are retried, and every stream of a run shares one request budget per host.

Not confirmed from Polygon's documents (the fake, ``fixtures/fake_polygon.py``, models them as clients observe
them): the exact 401/403/429 bodies; that a 429 comes without Retry-After (the source then waits one request
spacing, ``60 / requests_per_minute`` seconds); that an unknown ticker is ``"OK"`` with no results (so it loads
nothing rather than failing); how ``limit`` counts base aggregates for multi-minute bars (pages are followed
either way); and where multi-hour bars of stocks start (taken as the UTC grid).
"""

import etl

from .source import PolygonSource


@etl.hookimpl
def register_sources(register):
    register(PolygonSource)
