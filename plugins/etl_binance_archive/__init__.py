"""Binance's public data archive (data.binance.vision) as a market-etl source: years of klines, trades and funding
rates in a few hundred downloads instead of hundreds of thousands of REST requests, verified, and healed from
the REST API.

    [pipelines.history.source]
    plugin = "binance_archive"
    market = "usdm"                 # spot (default) | usdm (USD-M futures) | coinm (COIN-M: BTCUSD_PERP)
    dataset = "ohlcv"               # ohlcv (default) | trades | funding (usdm, coinm)
    symbols = ["BTCUSDT", "ETHUSDT"]
    timeframes = ["1m"]             # 1s (spot only) 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 1w 1M
    start = "2020-01-01"

Datasets ``ohlcv``, and ``open_interest`` and ``positioning`` (USD-M, timeframe ``5m``) from the daily ``metrics``
files (``metrics.py`` says how their columns map to the ``binance`` source's; a missing or bad file is healed from
REST within its 30 days, a recorded gap before them). ``ohlcv`` has the ``binance`` source's columns
(``quote_volume``, ``trades``, ``taker_buy_volume``, ``taker_buy_quote_volume``). **Rows are stored with
``source = "binance"``**, not ``binance_archive``: they are Binance's own candles, equal to what the ``binance``
source stores for the same bars (the same values, column for column), so archive history and REST updates mix in
one table, an ``etl run`` with the ``binance`` source continues where an archive backfill stopped, and a table
never holds the same candle twice under two names. Which road a span took is in the run summary and ledger
instead (below).

Dataset ``trades``: the aggTrades files, equal to the ``binance`` source's trades (``trade_id`` the aggregate
id, ``side`` the aggressor's from ``is_buyer_maker``). They are read from **daily** files although monthly ones
exist (a month of BTCUSDT is a zip of about a gigabyte, held in memory while read); each CSV's CRC-32 is
checked before any of its rows is used, then it is inflated and parsed a block at a time, and a file that
cannot be parsed part-way is healed whole from REST (its rows replace the same keys).
Dataset ``funding`` (futures): the monthly fundingRate files (``calc_time``, ``last_funding_rate``), equal to
the REST source's ``ts`` and ``funding_rate``; the archive has **no mark price**, so ``mark_price`` is absent
(a sink that replaces rows by key replaces a REST row's mark price with null). Spans read from REST are counted
as ``healed_rows`` and ``recent_rows`` for these two, and for ``open_interest`` and ``positioning``.

``market = "coinm"`` reads ``futures/cm`` (symbols like ``BTCUSD_PERP``; klines' ``volume`` is in contracts and
``quote_volume`` in base coin, as Binance writes them). What its archive lacks is healed from COIN-M's REST API
(``dapi``, the ``binance`` source with ``market = "coinm"``) like USD-M's: the same columns, counted as
``healed_bars`` / ``healed_rows``.

What it reads, for each stream and window:

- monthly zips for closed months, daily zips for days of months without one (the current month, or a
  month whose file is not published yet); files are found through the bucket's S3 listing (ListObjects
  with ``prefix`` and ``delimiter``, every page), one listing per folder and month per run;
- every zip is checked against the sha256 in its ``.CHECKSUM``. A mismatch is downloaded once more; a
  second mismatch, a missing ``.CHECKSUM``, a zip that cannot be read although its checksum matches, or a
  file that should exist and does not (absent from the listing a day after its period for daily files, eight
  for monthly ones, or answering 404) is **healed**: that span is read from the REST API through the
  ``binance`` source's own code (its paging, rate limits and retries), with a warning naming the file, and
  counted as ``healed_bars`` (``archive_files_unusable`` counts the files that were there but unusable);
- bars newer than the archive (today, and yesterday until its file appears) come from the REST API too,
  counted as ``recent_bars``; before the symbol's first archive file there is nothing to read;
- CSVs with or without the header row, open times in ms or µs (spot since 2025): read by the ``files``
  source's Binance reader (``etl_files.binance``); repeated rows are dropped (``repeated_rows_dropped``);
  missing minutes inside a file are recorded as gaps like any source's.

Options:

- ``market``: ``spot`` (default), ``usdm`` or ``coinm``.
- ``base_url``: the archive (default ``https://data.binance.vision``). Listings go to the bucket's S3
  endpoint (``https://s3-ap-northeast-1.amazonaws.com/data.binance.vision``: data.binance.vision answers
  them with an HTML page), or to ``base_url`` when it is set (a mirror or a test server serves both).
- ``rest_url``: Binance's REST API for healing and recent bars (default: the ``binance`` source's).
- ``cache_dir``: where verified zips and their checksums are kept (default ``~/.cache/market-etl``, or
  ``$XDG_CACHE_HOME/market-etl``, under ``binance-vision/``); a rerun or a resumed backfill reads them
  from there, verified again, without downloading.
- ``cache_max_mb``: size cap of that cache (default 4096); the least recently read files go first.
- ``downloads``: zips downloaded at once, shared by every stream of the pipeline (default 4).
- ``timeout``: seconds to wait for an archive answer (default 30); failures are retried as for every
  network source, and a stream fails only when retries run out.
- ``heal``: ``true`` (default) reads what the archive lacks from the REST API; ``false`` never calls it
  (where the REST API is out of reach: it answers HTTP 451 to some countries, the archive does not): a
  missing or unusable file is then a warning and a recorded gap (``archive_files_missing``,
  ``archive_files_unusable``), and a stream stops at the archive's newest file until the next one appears.

``symbols`` may be a selector: the symbols are the folders of the bucket's listing, delisted ones included,
``trading`` while a daily file of the last three days exists, else ``delisted`` (``symbols.py``).

With zlib-ng installed (the ``archive`` extra), zips are inflated by it, about twice as fast as zlib.

``etl backfill --dry-run`` lists every file with its size (and whether it is cached), the spans the REST
API would fill, and the bytes to download.
"""

import etl

from .source import BinanceArchiveSource

__all__ = ["BinanceArchiveSource"]


@etl.hookimpl
def register_sources(register):
    register(BinanceArchiveSource)
