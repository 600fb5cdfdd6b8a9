"""Binance source: OHLCV, trades, funding, open interest and positioning from Binance's public REST API, through ccxt.

    [pipelines.btc.source]
    plugin = "binance"
    market = "usdm"                 # spot (default) | usdm (USD-M perpetual futures) | coinm (COIN-M: BTCUSD_PERP)
    dataset = "ohlcv"               # ohlcv | trades | funding (usdm, coinm) | open_interest, positioning,
                                    # liquidations (usdm)
    symbols = ["BTCUSDT", "ETHUSDT"]
    timeframes = ["1m", "1h"]
    start = "2024-01-01"

- ``ohlcv`` keeps Binance's extra kline fields: ``quote_volume``, ``trades``, ``taker_buy_volume``,
  ``taker_buy_quote_volume``. Bars are read forward from ``startTime``, 1000 per request on spot (weight 2)
  and 499 on USD-M (weight 2: the most candles per unit of weight). A bar Binance still considers open (its
  clock is read once per run) is never emitted; the next run picks it up.
- COIN-M (``market = "coinm"``, ``dapi.binance.com``, symbols like ``BTCUSD_PERP``): ``ohlcv``, ``trades`` and
  ``funding``, in the columns the ``futures/cm`` archive has (``volume`` in contracts, ``quote_volume`` in the
  base coin, as Binance writes them). COIN-M klines take startTime and endTime at most 200 days apart and answer
  a longer range with its newest bars, so they are read in windows of one page (499 bars, or 200 days where
  that is less), weight 2 or less each; COIN-M funding rows have no mark price. Live streams: spot and USD-M only.
- ``trades``: aggregate trades (``aggTrades``; ``trade_id`` is the aggregate id, ``side`` the aggressor's: ``m``
  means the buyer was the maker, so the taker sold). Read in hour windows by time while a window holds less than
  a page of 1000, and by ``fromId`` after a full page, so no busy hour is cut at its 1000th trade. Weight 4 a
  request on spot, 20 on USD-M and COIN-M.
- ``liquidations`` (USD-M, ``etl stream`` only: no REST serves them): ``<symbol>@forceOrder`` orders,
  ``side`` the order's (``sell`` closes a long); the windows a connection missed are recorded gaps.
- ``funding``: every settlement (``ts`` is Binance's ``fundingTime``, often a few ms after the hour), with
  ``mark_price``. Pages of 1000 from ``startTime``.
- ``open_interest``: ``openInterestHist`` sampled every ``period`` (default ``1h``), with
  ``open_interest_value`` and ``circulating_supply``. Binance keeps only the last 30 days: an older ``start``
  begins at the oldest available sample, with a warning, and the periods lost are counted as
  ``periods_beyond_history``.
- ``positioning``: one row per period of ``timeframes`` (5m 15m 30m 1h 2h 4h 6h 12h 1d) from four endpoints
  joined on the sample time: ``long_short_ratio``, ``long_account``, ``short_account`` (every account,
  ``globalLongShortAccountRatio``), ``top_long_short_account_ratio`` and ``top_long_short_position_ratio``
  (the top 20% of accounts by margin), ``taker_buy_volume``, ``taker_sell_volume``, ``taker_buy_sell_ratio``
  (``takerlongshortRatio``). A sample an extra endpoint lacks keeps its row with nulls in that endpoint's
  columns; one the global endpoint lacks has no row (counted as ``samples_without_global_ratio``, and a gap).
  Windows of 500 periods; the same 30-day history as ``open_interest``, warned and counted the same way.

Rate limits: request weight is taken from a token bucket shared by every stream of the process (spot 6000
per minute, USD-M 2400, COIN-M 2400; USD-M fundingRate 500 requests per 5 minutes, COIN-M's weight 1 in its
request weight, and openInterestHist with the four positioning endpoints 1000 requests per 5 minutes), sized so
that no window of the exchange's can be exceeded. Limits differ per address and change: once ``exchangeInfo`` has
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
