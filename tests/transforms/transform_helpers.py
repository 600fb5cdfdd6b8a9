"""Shared by the transform tests: synthetic market series, pipeline files around them, and what a run left.

Every test drives the real ``etl`` command: CSV input for the ``files`` source, the transforms under
test, a DuckDB sink; then it reads the sink, the quarantine Parquet files and the run ledger.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.timeframes import parse_time, timeframe_ms

PIPELINE = "test"
DATABASE = "out.duckdb"


def candles(rows: int, *, start: str = "2024-01-01", timeframe: str = "1m", price: float = 42_000.0,
            seed: int = 0, volatility: float = 0.002, taker: bool = False) -> pl.DataFrame:
    """A consistent random walk of candles (each opens at the previous close), ``ts`` in epoch ms."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0, volatility, rows)))
    open_ = np.concatenate([[price], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, volatility / 2, rows)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, volatility / 2, rows)))
    volume = rng.gamma(2.0, 50.0, rows)
    frame = pl.DataFrame({
        "ts": parse_time(start) + np.arange(rows, dtype=np.int64) * timeframe_ms(timeframe),
        "open": open_, "high": high, "low": low, "close": close, "volume": volume,
    })
    if taker:
        frame = frame.with_columns((pl.col("volume") * rng.uniform(0.05, 0.95, rows)).alias("taker_buy_volume"))
    return frame


def write_input(folder: Path, frame: pl.DataFrame, name: str = "BTC.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.write_csv(path)
    return path


def pipeline(folder: Path, transforms: list[dict[str, Any]], *, symbols: tuple[str, ...] = ("BTC",),
             timeframe: str | None = "1m", dataset: str = "ohlcv", start: str = "2024-01-01",
             end: str | None = None, **pipeline_keys: Any) -> Path:
    """A pipeline file in ``folder``: files source reading ``{symbol}.csv``, the transforms, a DuckDB sink."""
    source: dict[str, Any] = {"plugin": "files", "path": "{symbol}.csv", "dataset": dataset,
                              "symbols": list(symbols), "start": start}
    if timeframe:
        source["timeframes"] = [timeframe]
    if end:
        source["end"] = end
    data = single_pipeline(source, [{"plugin": "duckdb", "path": DATABASE}], transforms, name=PIPELINE,
                           **pipeline_keys)
    return write_pipeline(folder, data)


def run(path: Path, *args: str) -> Any:
    return run_cli("run", *args, str(path))


def stored(folder: Path, table: str = "ohlcv") -> pl.DataFrame:
    with duckdb.connect(str(folder / DATABASE), read_only=True) as connection:
        return connection.sql(f'SELECT * FROM "{table}" ORDER BY symbol, ts').pl()


def counters(folder: Path) -> Counter[str]:
    """Counters of every stream run in the ledger, added up (e.g. ``quarantined``, ``dedup_conflicts``)."""
    total: Counter[str] = Counter()
    with sqlite3.connect(folder / ".etl" / "ledger.db") as connection:
        for (text,) in connection.execute("SELECT counters FROM stream_runs"):
            total.update(json.loads(text or "{}"))
    return total


def quarantined(folder: Path, dataset: str = "ohlcv") -> pl.DataFrame:
    files = sorted((folder / ".etl" / "quarantine" / PIPELINE / dataset).glob("*.parquet"))
    return pl.concat([pl.read_parquet(file) for file in files]).sort("ts") if files else pl.DataFrame()
