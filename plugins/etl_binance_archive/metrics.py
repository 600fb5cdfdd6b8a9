"""``open_interest`` and ``positioning`` from the archive's daily ``metrics`` files (USD-M), as the ``binance``
source's rows for the same 5-minute samples.

``data/futures/um/daily/metrics/<SYMBOL>/<SYMBOL>-metrics-<YYYY-MM-DD>.zip`` holds one CSV:
``create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,
sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio``. ``create_time``
(``2026-09-12 00:05:00``, UTC) is the sample's time, the REST API's ``timestamp``: samples are stamped at the end
of their 5 minutes, so a day's file runs from 00:05 to the next midnight and covers ``[D + 5m, D + 1d + 5m)``.
A file whose rows start at midnight instead is read as well: each file's rows are kept from 5 minutes before
its span, and a sample already read from the previous file is not read twice. Rows are not in time order and
some files (2020-09 to 2021-05) hold every row twice: they are sorted, and repeats dropped and counted.

The columns, against the REST endpoints of the same sample:

- ``open_interest`` = ``sum_open_interest``, ``open_interest_value`` = ``sum_open_interest_value``
  (``openInterestHist``, period 5m);
- ``positioning`` (timeframe 5m): ``long_short_ratio`` = ``count_long_short_ratio`` (every account,
  ``globalLongShortAccountRatio``), ``long_account`` = r / (1 + r) and ``short_account`` = 1 / (1 + r), rounded to
  the four decimals the REST API gives them in; ``top_long_short_account_ratio`` =
  ``count_toptrader_long_short_ratio``, ``top_long_short_position_ratio`` = ``sum_toptrader_long_short_ratio``,
  ``taker_buy_sell_ratio`` = ``sum_taker_long_short_vol_ratio``. The archive has no taker volumes: those columns
  stay null.

A missing or unusable file is read from the REST API where it still has the samples (the last 30 days); older
samples cannot be had: the warning ``binance archive metrics beyond the REST API's 30 days, left as a gap``,
``archive_files_missing`` (or ``archive_files_unusable``), and a gap in the ledger (the core finds positioning's
on its 5-minute grid; open interest has no timeframe, so this module records it). With ``heal = false`` every
missing file is such a gap. After a symbol's last file, when its archive has ended
(``symbols.ended``: a delisting), there is nothing to read.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from etl.errors import ConfigError, PermanentError
from etl.log import get_logger
from etl.timeframes import DAY, HOUR, MINUTE, from_ms, iso, now_ms, parse_time

from . import symbols
from .klines import member
from .layout import File, Span, days
from .store import Unusable

if TYPE_CHECKING:
    import polars as pl

    import etl

    from .source import BinanceArchiveSource

log = get_logger("etl_binance_archive")

DATASETS = ("open_interest", "positioning")
STEP = 5 * MINUTE
DAILY_DELAY = DAY  # a day's file appears the next morning
REST_HISTORY = 30 * DAY - HOUR  # what the REST API still serves, with an hour's margin for clocks
RATIOS = {"count_long_short_ratio": "long_short_ratio", "count_toptrader_long_short_ratio":
          "top_long_short_account_ratio", "sum_toptrader_long_short_ratio": "top_long_short_position_ratio",
          "sum_taker_long_short_vol_ratio": "taker_buy_sell_ratio"}
AMOUNTS = {"sum_open_interest": "open_interest", "sum_open_interest_value": "open_interest_value"}


def folder(symbol: str) -> str:
    return f"data/futures/um/daily/metrics/{symbol}/"


def key(symbol: str, day: int) -> str:
    return f"{folder(symbol)}{symbol}-metrics-{from_ms(day):%Y-%m-%d}.zip"


def day_of(key: str) -> int:
    return parse_time(key.removesuffix(".zip")[-10:])


def check(source: BinanceArchiveSource) -> None:
    """Metrics exist for USD-M only, every 5 minutes."""
    config = source.config
    if config.dataset not in DATASETS:
        return
    if source.settings["market"] != "usdm":
        raise ConfigError(f"binance_archive dataset {config.dataset!r} comes from the USD-M metrics files: set "
                          f"market = 'usdm' (it is {source.settings['market']!r})")
    if any(timeframe != "5m" for timeframe in config.timeframes):
        raise ConfigError(f"binance_archive positioning is the metrics files' 5-minute samples: timeframes = "
                          f"['5m'], not {list(config.timeframes)}")


# --- which files ---


def pieces(source: BinanceArchiveSource, stream: etl.Stream, start: int, end: int) -> list[File | Span]:
    """The day files whose samples ``[D + 5m, D + 1d + 5m)`` meet ``[start, end)``, and spans for the days the
    archive lacks, from the symbol's first file to its last (or to now, while it is published)."""
    listed = source.archive().listing(folder(stream.symbol))
    zips = sorted(day_of(name) for name in listed if name.endswith(".zip"))
    if not zips:
        raise PermanentError(f"binance_archive: no metrics files for {stream.symbol!r} in the usdm archive "
                             f"({source.archive().url(folder(stream.symbol))}); is it a USD-M symbol, spelled as "
                             "Binance lists it?")
    now = now_ms()
    last = zips[-1] + DAY if symbols.ended(source, stream.symbol, zips[-1] + DAY) else end
    found: list[File | Span] = []
    for day in days(max(start, zips[0] + STEP) - STEP, min(end, last + STEP) - STEP):
        name, lo, hi = key(stream.symbol, day), day + STEP, day + DAY + STEP
        if name in listed:
            found.append(File(name, lo, hi, listed[name]))
        else:
            why = "recent" if day + DAY + DAILY_DELAY > now else "missing"
            found.append(Span(max(start, lo), min(end, hi), why, name))
    return found


# --- reading ---


def read(body: bytes, name: str) -> pl.DataFrame:
    """The file's rows with ``ts`` in epoch ms and the numeric columns as Float64, in file order."""
    import polars as pl

    numbers = [*AMOUNTS, *RATIOS]
    try:
        raw = pl.read_csv(member(body, name), schema_overrides={"create_time": pl.String, "symbol": pl.String,
                                                                 **dict.fromkeys(numbers, pl.Float64)})
        stamps = raw["create_time"].str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC", time_unit="ms")
        return raw.select(stamps.dt.epoch("ms").alias("ts"), *numbers)
    except (zipfile.BadZipFile, zlib.error, EOFError, struct.error, pl.exceptions.PolarsError, ValueError) as exc:
        raise Unusable(name, "corrupt", f"unreadable: {type(exc).__name__}: {exc}") from None


def as_dataset(frame: pl.DataFrame, dataset: str) -> pl.DataFrame:
    """The metrics as ``open_interest`` or ``positioning`` rows (see the module's docstring for the mapping)."""
    import polars as pl

    if dataset == "open_interest":
        return frame.select("ts", *(pl.col(column).alias(name) for column, name in AMOUNTS.items()))
    ratio = pl.col("count_long_short_ratio")
    return frame.select(
        "ts", ratio.alias("long_short_ratio"), (ratio / (1 + ratio)).round(4).alias("long_account"),
        (1 / (1 + ratio)).round(4).alias("short_account"),
        *(pl.col(column).alias(name) for column, name in RATIOS.items() if column != "count_long_short_ratio"),
    )


def fetch(source: BinanceArchiveSource, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
    """Each file's samples in ``[start, end)``, ascending and once each; REST (or a gap) for what it lacks."""
    import polars as pl

    after = start  # the first sample time not read yet
    for piece, download in source._download_ahead(pieces(source, stream, start, end)):
        if isinstance(piece, Span):
            yield from _fill(source, stream, Span(max(after, piece.start), piece.end, piece.why, piece.key))
            after = max(after, piece.end)
            continue
        assert download is not None
        try:
            frame = read(download.result(), piece.key)
        except Unusable as exc:
            yield from _unusable(source, stream, Span(max(after, piece.start), min(end, piece.end), "unusable",
                                                      piece.key), exc)
            after = max(after, min(end, piece.end))
            continue
        kept = frame.filter(pl.col("ts").is_between(max(after, piece.start - STEP), min(end, piece.end),
                                                    closed="left"))
        unique = kept.unique("ts", keep="last").sort("ts")
        source.count(stream, "repeated_rows_dropped", kept.height - unique.height)
        if unique.height:
            after = max(after, unique["ts"][-1] + 1)
            yield as_dataset(unique, stream.dataset)


def _unusable(source: BinanceArchiveSource, stream: etl.Stream, span: Span, error: Unusable) -> Iterator[pl.DataFrame]:
    if error.reason == "corrupt":
        source.archive().forget(span.key)
    log.warning("binance archive file unusable", url=source.archive().url(span.key), reason=str(error),
                stream=stream.label, healed_from_rest=source.settings["heal"])
    source.count(stream, "archive_files_unusable", 1)
    yield from _fill(source, stream, span)


def _fill(source: BinanceArchiveSource, stream: etl.Stream, span: Span) -> Iterator[pl.DataFrame]:
    """The span from the REST API where it still has it (its last 30 days, and only with ``heal``); the rest is a
    gap, and samples not published yet wait for the next run."""
    heal = source.settings["heal"]
    if span.start >= span.end or (span.why == "recent" and not heal):
        return
    reach = now_ms() - REST_HISTORY if heal else span.end
    if span.start < reach:
        _gap(source, stream, Span(span.start, min(span.end, reach), span.why, span.key))
    if span.end > reach:
        yield from source._from_rest(stream, Span(max(span.start, reach), span.end, span.why, span.key))


def _gap(source: BinanceArchiveSource, stream: etl.Stream, span: Span) -> None:
    """Warned, counted, and recorded as a gap for ``open_interest`` (the core finds positioning's on its grid)."""
    event = ("binance archive metrics beyond the REST API's 30 days, left as a gap" if source.settings["heal"]
             else "binance archive file missing, left as a gap")
    log.warning(event, url=source.archive().url(span.key), span=f"{iso(span.start)}..{iso(span.end)}",
                stream=stream.label)
    if span.why == "missing":
        source.count(stream, "archive_files_missing", 1)
    if not stream.timeframe:
        source.gap(stream, span.start, span.end, -(-(span.end - span.start) // STEP))
