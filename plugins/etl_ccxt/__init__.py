"""ccxt source: OHLCV from any of the 100+ exchanges ccxt supports, and the machinery the ``binance`` and
``bybit`` sources are built on.

    [pipelines.okx.source]
    plugin = "ccxt"
    exchange = "okx"                # any id in ccxt.exchanges
    market = "spot"                 # spot (default) | swap | future: which market an id names
    symbols = ["BTC-USDT"]          # the exchange's own ids (or ccxt's unified "BTC/USDT"), stored as written
    timeframes = ["1h"]
    start = "2024-01-01"

Bars come from ccxt's ``fetch_ohlcv`` (open, high, low, close, volume), paged forward with the page limit
ccxt knows for the exchange, oldest first; a bar the exchange still considers open is never emitted.
Requests are metered with ccxt's per-endpoint costs (``rateLimit`` ms per cost unit) through the shared
token buckets; ``rate_limit`` sets the cost units per minute instead. ``exchange_options`` passes ccxt
options (e.g. ``{ fetchMarkets = { types = ["spot"] } }`` to load fewer markets). Network failures, rate
limits and 5xx are retried (Retry-After honoured); unknown symbols and rejected requests fail the stream.

For the shared machinery see ``client`` (ccxt exchange at ``base_url``, metered, per-thread, markets once),
``source`` (the base class), ``budget`` (rate limits as token buckets), ``errors`` and ``frames``.
"""

import etl

from .generic import CcxtSource

__all__ = ["CcxtSource"]


@etl.hookimpl
def register_sources(register):
    register(CcxtSource)
