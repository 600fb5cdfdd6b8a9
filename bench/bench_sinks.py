"""Rows per second of each sink: a first load and an idempotent reload of the same rows into one table.

    python bench/bench_sinks.py                       # 1M rows x 18 columns, every sink
    python bench/bench_sinks.py --rows 5000000 --sinks duckdb
    python bench/bench_sinks.py --batch-rows 100000   # as the runner hands them over, batch by batch
    python bench/bench_sinks.py --repeat 3            # best of 3, each into a fresh store (shared machines)

The data is one OHLCV stream of one-minute candles plus float feature columns up to ``--columns``. The
reference row is a plain DuckDB ``INSERT INTO t SELECT * FROM arrow_table`` of the same data into a
table without a key: what a load costs before anything guarantees uniqueness. With ``--batch-rows`` a
second reference row does the same insert once per batch (each committed), the price of batching alone.
PostgreSQL runs on a private server started from the machine's binaries (durable settings: fsync on),
unless ``--dsn`` names one. Sinks are driven through the plugin registry, as the runner drives them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SINKS = ("duckdb", "parquet", "sqlite", "postgres")
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def candles(rows: int, columns: int) -> Any:
    """One stream of one-minute candles; columns beyond the nine of ohlcv are float features."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(7)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.001, rows)))
    frame = pl.DataFrame({
        "source": pl.repeat("bench", rows, eager=True),
        "symbol": pl.repeat("BTCUSDT", rows, eager=True),
        "timeframe": pl.repeat("1m", rows, eager=True),
        "ts": pl.int_range(0, rows, eager=True) * 60_000 + 1_577_836_800_000,
        "open": close * (1 + rng.normal(0, 0.0005, rows)),
        "high": close * 1.001,
        "low": close * 0.999,
        "close": close,
        "volume": rng.gamma(2.0, 50.0, rows),
    }).with_columns(pl.from_epoch("ts", time_unit="ms").dt.replace_time_zone("UTC"))
    extras = {f"feature_{index}": rng.normal(0, 1, rows) for index in range(max(0, columns - frame.width))}
    return frame.with_columns(**{name: pl.Series(values) for name, values in extras.items()})


def timed(action: Callable[[], None]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def reference(frame: Any, folder: Path, run: int, batch_rows: int) -> float:
    """Plain insert from Arrow into DuckDB, one committed statement per batch: the yardstick for every sink."""
    import duckdb

    path = folder / f"run{run}" / f"reference-{batch_rows}.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(path))
    connection.register("arrow_table", frame.head(0).to_arrow())
    connection.execute("CREATE TABLE t AS SELECT * FROM arrow_table LIMIT 0")
    tables = [frame.slice(offset, batch_rows).to_arrow() for offset in range(0, frame.height, batch_rows)]

    def insert_all() -> None:
        for table in tables:
            connection.register("arrow_table", table)
            connection.execute("INSERT INTO t SELECT * FROM arrow_table")

    seconds = timed(insert_all)
    connection.close()
    return seconds


def settings_for(sink: str, folder: Path, run: int, postgres: Callable[[], str]) -> dict[str, Any]:
    """Settings of a fresh, empty store for repetition ``run`` of ``sink``."""
    if sink == "duckdb":
        return {"path": folder / f"run{run}" / "bench.duckdb"}
    if sink == "parquet":
        return {"path": folder / f"run{run}" / "lake", "compression_level": 3}
    if sink == "sqlite":
        return {"path": folder / f"run{run}" / "bench.sqlite"}
    return {"dsn": postgres(), "schema": f"bench{run}", "hypertable": False, "retries": 3}


def postgres_dsn(stack: ExitStack, dsn: str | None) -> Callable[[], str]:
    """The DSN given, or one of a private server started on first use."""
    started: list[str] = []

    def get() -> str:
        if dsn is not None:
            return dsn
        if not started:
            sys.path.insert(0, str(ROOT))
            from fixtures.postgres_server import PostgresServer

            server = stack.enter_context(PostgresServer(settings=DURABLE))
            started.append(server.create_database("bench"))
        return started[0]

    return get


def load(sink_name: str, settings: dict[str, Any], frame: Any, batch_rows: int, folder: Path) -> tuple[float, float]:
    """Seconds for the first load and for the identical reload, batch by batch, through the real sink."""
    import etl
    from etl.datasets import dataset
    from etl.plugins import registry

    sink = registry().get("sink", sink_name)(settings, etl.PluginContext("bench", folder, folder / ".etl"))
    sink.check()
    sink.open()
    schema = dataset("ohlcv")
    batches = [frame.slice(offset, batch_rows) for offset in range(0, frame.height, batch_rows)]

    def write_all() -> None:
        for batch in batches:
            sink.write(batch, schema, "ohlcv")

    try:
        return timed(write_all), timed(write_all)
    finally:
        sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=18, help="total columns, at least the 9 of ohlcv")
    parser.add_argument("--batch-rows", type=int, default=0, help="rows per sink write; default: all in one")
    parser.add_argument("--sinks", default=",".join(SINKS), help=f"comma list of {', '.join(SINKS)}")
    parser.add_argument("--dsn", help="benchmark this PostgreSQL server instead of a private one")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement, each into a fresh store; "
                        "the best is shown")
    args = parser.parse_args()
    frame = candles(args.rows, args.columns)
    batch_rows = args.batch_rows or args.rows
    print(f"{args.rows:,} rows x {frame.width} columns, {batch_rows:,} rows per write")
    sinks = [name.strip() for name in args.sinks.split(",") if name.strip()]
    references = {"duckdb INSERT SELECT from Arrow": args.rows}
    if batch_rows < args.rows:
        references["  the same, one INSERT per batch"] = batch_rows
    best: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sinks-") as temp, ExitStack() as stack:
        folder = Path(temp)
        postgres = postgres_dsn(stack, args.dsn)
        for run in range(args.repeat):  # interleaved, so a busy moment on a shared machine hits every row alike
            for label, rows in references.items():
                keep_best(best, label, [reference(frame, folder, run, rows)])
            for sink in sinks:
                keep_best(best, sink, load(sink, settings_for(sink, folder, run, postgres), frame, batch_rows, folder))
            shutil.rmtree(folder / f"run{run}", ignore_errors=True)
    base = args.rows / best["duckdb INSERT SELECT from Arrow"][0]
    print(f"{'sink':<34}{'first load':>14}{'reload':>14}{'first/ref':>11}")
    for label, seconds in best.items():
        rate = args.rows / seconds[0]
        reload = f"{args.rows / seconds[1]:>12,.0f}/s" if len(seconds) > 1 else " " * 14
        print(f"{label:<34}{rate:>12,.0f}/s{reload}{100 * rate / base:>10.0f}%")


def keep_best(best: dict[str, list[float]], label: str, seconds: Sequence[float]) -> None:
    best[label] = [min(pair) for pair in zip(best.get(label, seconds), seconds, strict=True)]


if __name__ == "__main__":
    main()
