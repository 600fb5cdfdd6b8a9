"""Deterministic sample batches in any dataset's schema, and CSV files the ``files`` source can read.

Sink and transform suites need realistic rows without a network: OHLCV is a seeded random walk whose
candles are consistent (low <= open, close <= high) and contiguous; other datasets get distinct, typed
values per row so every key is unique.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from etl.base import Stream
from etl.timeframes import HOUR, timeframe_ms

if TYPE_CHECKING:
    import polars as pl

    from etl.datasets import Dataset

TRADE_SPACING_MS = 1_000


def row_spacing(stream: Stream) -> int:
    """Milliseconds between sample rows: one bar, one second for trades, one hour otherwise."""
    if stream.timeframe:
        return timeframe_ms(stream.timeframe)
    return TRADE_SPACING_MS if stream.dataset == "trades" else HOUR


def sample_rows(dataset: Dataset, stream: Stream, start_ms: int, rows: int, *, source: str = "sample",
                first_index: int = 0) -> pl.DataFrame:
    """``rows`` rows of ``dataset`` for ``stream`` from ``start_ms``, exactly as the runner hands them to sinks.

    Row ``i`` is the same whatever ``first_index`` a call starts from, so overlapping calls agree. OHLCV
    batches carry one extra column, ``trades`` (Int64), to prove extras survive.
    """
    import polars as pl

    from etl.datasets import polars_type

    spacing = row_spacing(stream)
    indexes = range(first_index, first_index + rows)
    fixed = {"source": source, "symbol": stream.symbol, "timeframe": stream.timeframe}
    walk = _random_walk(stream, first_index + rows) if dataset.name == "ohlcv" else {}
    columns: dict[str, pl.Series] = {}
    for name, kind in dataset.columns:
        if name in fixed:
            values: list = [fixed[name]] * rows
        elif kind == "ts":
            values = [start_ms + index * spacing for index in indexes]
        elif name in walk:
            values = walk[name][first_index:]
        else:
            values = [_value(name, kind, stream, index) for index in indexes]
        series = pl.Series(name, values).cast(pl.Datetime("ms") if kind == "ts" else polars_type(kind))
        columns[name] = series.dt.replace_time_zone("UTC") if kind == "ts" else series
    frame = pl.DataFrame(columns)
    if dataset.name == "ohlcv":
        frame = frame.with_columns(pl.Series("trades", walk["trades"][first_index:], pl.Int64))
    return frame


def _value(name: str, kind: str, stream: Stream, index: int) -> object:
    if kind == "str":
        return ("buy", "sell")[index % 2] if name == "side" else f"{stream.symbol}-{name}-{index}"
    if kind == "i64":
        return index
    rng = random.Random(f"{stream.label}/{name}/{index}")
    return round(rng.uniform(0.5, 1.5) * 1000, 6)


def _random_walk(stream: Stream, rows: int) -> dict[str, list]:
    """Consistent, contiguous candles: each opens at the previous close."""
    rng = random.Random(stream.label)
    price = 100.0 + rng.uniform(0, 900)
    walk: dict[str, list] = {name: [] for name in ("open", "high", "low", "close", "volume", "trades")}
    for _ in range(rows):
        close = price * (1 + rng.gauss(0, 0.01))
        walk["open"].append(round(price, 4))
        walk["close"].append(round(close, 4))
        walk["high"].append(round(max(price, close) * (1 + abs(rng.gauss(0, 0.003))), 4))
        walk["low"].append(round(min(price, close) * (1 - abs(rng.gauss(0, 0.003))), 4))
        walk["volume"].append(round(abs(rng.gauss(1000, 300)) + 1, 4))
        walk["trades"].append(rng.randint(10, 500))
        price = walk["close"][-1]
    return walk


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    """Write a sample batch as CSV with epoch-millisecond ``ts``, the way the ``files`` source reads it."""
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    stream_columns = [name for name in ("source", "symbol", "timeframe") if name in frame.columns]
    frame.drop(stream_columns).with_columns(pl.col("ts").dt.epoch("ms")).write_csv(path)
    return path


def csv_path_pattern(folder: Path) -> str:
    """The ``files`` source ``path`` matching files written by ``write_stream_csvs``."""
    return str(folder / "{symbol}_{timeframe}.csv")


def write_stream_csvs(folder: Path, frames: dict[Stream, pl.DataFrame]) -> str:
    """Write one CSV per stream and return the ``path`` pattern for the ``files`` source."""
    for stream, frame in frames.items():
        write_csv(frame, folder / f"{stream.symbol}_{stream.timeframe or ''}.csv")
    return csv_path_pattern(folder)
