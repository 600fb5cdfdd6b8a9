"""freqtrade's data folder (``user_data/data/<exchange>``), read by the ``files`` source (``layout = "freqtrade"``).

freqtrade names a file after the pair with ``/ :.@$+`` and spaces turned into ``_``: spot candles are
``BTC_USDT-1m.feather``, a futures pair's are ``futures/BTC_USDT_USDT-1h-futures.feather`` (and ``-mark``,
``-index``, ``-premiumIndex``), its funding rates ``futures/BTC_USDT_USDT-8h-funding_rate.feather`` and trades
``BTC_USDT-trades.feather``. The same stem may end in ``.feather`` (Arrow IPC), ``.parquet``, ``.json`` or
``.json.gz``, whichever ``dataformat_ohlcv`` / ``dataformat_trades`` freqtrade was set to.

Candles hold ``date, open, high, low, close, volume`` (feather and Parquet: a UTC datetime; JSON: rows of
``[ms, open, high, low, close, volume]``); a funding-rate file is candles whose ``open`` is the rate; trades
hold ``timestamp, id, type, side, price, amount, cost`` (JSON: rows in that order).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING

from etl.errors import ConfigError, SourceError

if TYPE_CHECKING:
    import polars as pl

    from etl.stream import Stream

SUFFIXES = {".feather": "feather (Arrow IPC)", ".parquet": "parquet", ".json": "json", ".json.gz": "json.gz"}
CANDLE_TYPES = ("auto", "spot", "futures", "mark", "index", "premiumIndex")
CANDLE_COLUMNS = ("date", "open", "high", "low", "close", "volume")
TRADE_COLUMNS = ("timestamp", "id", "type", "side", "price", "amount", "cost")


def pair_to_filename(pair: str) -> str:
    """freqtrade's own mangling (``freqtrade.misc.pair_to_filename``): ``BTC/USDT:USDT`` -> ``BTC_USDT_USDT``."""
    for char in "/ .@$+:":
        pair = pair.replace(char, "_")
    return pair


def check_dataset(dataset: str) -> None:
    if dataset == "open_interest":
        raise ConfigError("layout = 'freqtrade': freqtrade keeps no open interest; "
                          "its files hold ohlcv, funding and trades")


def pattern(stream: Stream, candle_type: str) -> str:
    """The glob of the stream's file, relative to the folder and without its suffix: futures data (a pair with
    ``:``) lives in ``futures/``; funding files name freqtrade's funding interval (``8h``, ``1h``)."""
    import glob

    futures = ":" in stream.symbol
    if candle_type == "auto":
        candle_type = "futures" if futures else "spot"
    name = glob.escape(pair_to_filename(stream.symbol))
    if stream.dataset == "funding":
        return f"futures/{name}-*-funding_rate"
    if stream.dataset == "trades":
        return f"{'futures/' if futures else ''}{name}-trades"
    if candle_type == "spot":
        return f"{name}-{stream.timeframe}"
    return f"futures/{name}-{stream.timeframe}-{candle_type}"


def find(folder: Path, stream: Stream, candle_type: str) -> list[Path]:
    """The stream's one file; an error naming what was looked for when there is none, or several formats."""
    wanted = pattern(stream, candle_type)
    found = sorted(path for suffix in SUFFIXES for path in folder.glob(wanted + suffix))
    if not found:
        raise SourceError(f"files: no freqtrade file for {stream.label}: looked for {folder / wanted}"
                          f".{{{','.join(suffix[1:] for suffix in SUFFIXES)}}}")
    if len(found) > 1:
        raise SourceError(f"files: {stream.label} has {len(found)} freqtrade files ({', '.join(map(str, found))}); "
                          f"keep one format (freqtrade convert-data converts, then remove the others)")
    return found


def format_of(file: Path) -> str:
    """The format a file is read as, by its suffix."""
    name = file.name.lower()
    return next((kind for suffix, kind in SUFFIXES.items() if name.endswith(suffix)), "csv")


def scan(file: Path, dataset: str) -> pl.LazyFrame:
    """The file's rows as ``ts`` and the dataset's columns (the others kept as extras)."""
    import polars as pl

    kind = format_of(file)
    if kind == "feather (Arrow IPC)":
        lazy = pl.scan_ipc(file)
    elif kind == "parquet":
        lazy = pl.scan_parquet(file)
    else:
        lazy = _json(file, TRADE_COLUMNS if dataset == "trades" else CANDLE_COLUMNS).lazy()
    if dataset == "trades":
        names = lazy.collect_schema().names()
        return lazy.drop([name for name in ("date",) if name in names]).rename(
            {"timestamp": "ts", "id": "trade_id", "amount": "size"}
        ).with_columns(pl.col("trade_id").cast(pl.String))
    lazy = lazy.rename({"date": "ts"})
    if dataset == "funding":
        return lazy.select("ts", pl.col("open").alias("funding_rate"))
    return lazy


def _json(file: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    """freqtrade's JSON (``DataFrame.to_json(orient="values")``): a list of rows, gzipped for ``.json.gz``."""
    import polars as pl

    opener = gzip.open if file.name.lower().endswith(".gz") else open
    try:
        with opener(file, "rt", encoding="utf-8") as handle:
            rows = json.load(handle)
    except (OSError, ValueError, EOFError) as exc:
        raise SourceError(f"files: cannot read {file} as freqtrade JSON: {exc}") from None
    if not isinstance(rows, list) or any(not isinstance(row, list) or len(row) != len(columns) for row in rows):
        raise SourceError(f"files: {file} is not freqtrade JSON: expected rows of [{', '.join(columns)}]")
    types = {"id": pl.String, "type": pl.String, "side": pl.String, "date": pl.Int64, "timestamp": pl.Int64}
    schema = {name: types.get(name, pl.Float64) for name in columns}
    return pl.DataFrame(rows, schema=schema, orient="row", strict=False)
