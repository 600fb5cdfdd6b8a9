"""Binance source: OHLCV, funding rates and open interest from Binance's public REST API, through ccxt.

    [pipelines.btc.source]
    plugin = "binance"
    market = "usdm"                 # spot (default) | usdm (USD-M perpetual futures)
    dataset = "ohlcv"               # ohlcv | funding | open_interest | liquidations (usdm) | trades
    symbols = ["BTCUSDT", "ETHUSDT"]
    timeframes = ["1m", "1h"]
    start = "2024-01-01"

- ``ohlcv`` keeps Binance's extra kline fields: ``quote_volume``, ``trades``, ``taker_buy_volume``,
  ``taker_buy_quote_volume``. Bars are read forward from ``startTime``, 1000 per request on spot (weight 2)
  and 499 on USD-M (weight 2: the most candles per unit of weight). A bar Binance still considers open (its
  clock is read once per run) is never emitted; the next run picks it up.
- ``trades``: aggregate trades (``aggTrades``; ``trade_id`` is the aggregate id, ``side`` the aggressor's: ``m``
  means the buyer was the maker, so the taker sold). Read in hour windows by time while a window holds less than
  a page of 1000, and by ``fromId`` after a full page, so no busy hour is cut at its 1000th trade. Weight 4 a
  request on spot, 20 on USD-M.
- ``liquidations`` (USD-M, ``etl stream`` only: no REST serves them): ``<symbol>@forceOrder`` orders,
  ``side`` the order's (``sell`` closes a long); the windows a connection missed are recorded gaps.
- ``funding``: every settlement (``ts`` is Binance's ``fundingTime``, often a few ms after the hour), with
  ``mark_price``. Pages of 1000 from ``startTime``.
- ``open_interest``: ``openInterestHist`` sampled every ``period`` (default ``1h``), with
  ``open_interest_value`` and ``circulating_supply``. Binance keeps only the last 30 days: an older ``start``
  begins at the oldest available sample, with a warning.

Rate limits: request weight is taken from a token bucket shared by every stream of the process (spot 6000
per minute, USD-M 2400; fundingRate 500 and openInterestHist 1000 requests per 5 minutes), sized so that no
window of the exchange's can be exceeded. Limits differ per address and change: once ``exchangeInfo`` has
answered, the bucket takes the shape of the ``REQUEST_WEIGHT`` limits it advertises, and the weight the
``X-MBX-USED-WEIGHT-*`` headers count (other clients of the address included) holds requests until the
window has room. ``rate_limit`` caps the weight per minute used, to leave room for other clients.
429 and 418 answers are retried after their ``Retry-After``, which pauses every stream; 5xx, timeouts and
cut-off answers are retried with backoff. An unknown symbol or a request
Binance rejects fails that stream at once, with Binance's message.
"""

import etl

from .source import BinanceSource

__all__ = ["BinanceSource"]


@etl.hookimpl
def register_sources(register):
    register(BinanceSource)
