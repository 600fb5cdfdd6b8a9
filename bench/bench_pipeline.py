"""Throughput of the core path: files -> duckdb through the real runner, beside plain DuckDB inserts.

    python bench/bench_pipeline.py                      # 250 symbols x 20,000 one-minute candles = 5M rows
    python bench/bench_pipeline.py --symbols 20 --candles 10000
    python bench/bench_pipeline.py --repeat 3           # best time of 3 (shared machines), highest peak RSS

Prints rows/s and peak RSS (each measurement runs in its own process, so RSS is its own) for:
  plain insert   INSERT INTO t SELECT * FROM arrow_table, no key (the reference)
  duckdb sink    the sink's upsert (delete keys + insert), one transaction per group of batches as the runner's
                 committer forms them (up to commit_rows rows and commit_mb megabytes, the defaults)
  etl run        `etl run` of a files -> duckdb pipeline over Parquet files, one per symbol
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXTRAS = ["quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume", "vwap", "spread", "mark",
          "index_price", "funding_hint"]


def symbol_names(symbols: int) -> list[str]:
    return [f"SYM{index:04d}USDT" for index in range(symbols)]


def generate(folder: Path, symbols: int, candles: int) -> None:
    """One Parquet file per symbol, 18 columns like a vendor dump with extras.

    Runs in a child process: a child's peak RSS starts at its parent's high-water mark on Linux, so a parent
    that had built the data would inflate every figure measured after it.
    """
    import numpy as np
    import polars as pl

    names = symbol_names(symbols)
    rng = np.random.default_rng(7)
    start = 1_704_067_200_000
    ts = start + np.arange(candles, dtype=np.int64) * 60_000
    for name in names:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, candles)))
        open_ = np.concatenate([[close[0]], close[:-1]])
        frame = pl.DataFrame({
            "ts": ts, "open": open_, "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999, "close": close, "volume": rng.random(candles) * 10,
        })
        frame = frame.with_columns([pl.lit(float(i)).alias(extra) for i, extra in enumerate(EXTRAS)])
        frame.write_parquet(folder / f"{name}.parquet")


def child(mode: str, folder: str) -> None:
    """Run one measurement in this process and print 'seconds rows'."""
    import duckdb
    import polars as pl

    files = sorted(Path(folder, "data").glob("*.parquet"))
    frames = [
        pl.read_parquet(f).with_columns(
            pl.lit("files").alias("source"), pl.lit(f.stem).alias("symbol"), pl.lit("1m").alias("timeframe"),
            pl.from_epoch("ts", time_unit="ms").dt.replace_time_zone("UTC"),
        ).select("source", "symbol", "timeframe", "ts", pl.exclude("source", "symbol", "timeframe", "ts"))
        for f in files
    ]
    rows = sum(frame.height for frame in frames)
    if mode == "plain":
        con = duckdb.connect(str(Path(folder, "plain.duckdb")))
        con.register("arrow_table", pl.concat(frames).to_arrow())
        started = time.perf_counter()
        con.execute("CREATE TABLE t AS SELECT * FROM arrow_table LIMIT 0")
        con.execute("INSERT INTO t SELECT * FROM arrow_table")
        elapsed = time.perf_counter() - started
    else:
        from etl_duckdb import DuckDBSink

        from etl.base import PluginContext
        from etl.config import SETTINGS
        from etl.datasets import BUILTIN_DATASETS

        sink = DuckDBSink({"path": Path(folder, "sink.duckdb")}, PluginContext("bench", Path(folder), Path(folder)))
        sink.open()
        started = time.perf_counter()
        commit_rows, commit_bytes = SETTINGS["commit_rows"].default, SETTINGS["commit_mb"].default * 2**20
        group: list[pl.DataFrame] = []
        for frame in frames:
            group.append(frame)
            full = (sum(part.height for part in group) >= commit_rows
                    or sum(part.estimated_size() for part in group) >= commit_bytes)
            if full or frame is frames[-1]:
                sink.write(pl.concat(group), BUILTIN_DATASETS[0], "ohlcv")
                group = []
        elapsed = time.perf_counter() - started
        sink.close()
    print(f"{elapsed} {rows}")


def measure(args: list[str]) -> tuple[float, float, str]:
    """Run a child process; return (wall seconds, its own peak RSS in MB, its stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed")
    return wall, usage.ru_maxrss / 1024, output


PIPELINE = """
[pipelines.bench]
concurrency = 2

[pipelines.bench.source]
plugin = "files"
path = "data/{{symbol}}.parquet"
symbols = [{symbols}]
timeframes = ["1m"]

[[pipelines.bench.sinks]]
plugin = "duckdb"
path = "etl.duckdb"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=250)
    parser.add_argument("--candles", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement, each into a fresh store; "
                        "the best time and the highest peak RSS are reported")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, folder = args.child
        if mode == "generate":
            generate(Path(folder), args.symbols, args.candles)
        else:
            child(mode, folder)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "data").mkdir()
        subprocess.run([sys.executable, __file__, "--symbols", str(args.symbols), "--candles", str(args.candles),
                        "--child", "generate", str(folder / "data")], check=True)
        names = symbol_names(args.symbols)
        rows = args.symbols * args.candles
        print(f"{args.symbols} symbols x {args.candles:,} candles = {rows:,} rows, 18 columns", flush=True)
        (folder / "pipelines.toml").write_text(PIPELINE.format(symbols=", ".join(f'"{n}"' for n in names)))
        commands = {
            "plain insert": [sys.executable, __file__, "--child", "plain", tmp],
            "duckdb sink": [sys.executable, __file__, "--child", "sink", tmp],
            "etl run (files -> duckdb)": [sys.executable, "-m", "etl", "-q", "run", str(folder / "pipelines.toml")],
        }
        results = []
        for label, command in commands.items():
            runs = []
            for _ in range(args.repeat):
                shutil.rmtree(folder / ".etl", ignore_errors=True)
                for store in folder.glob("*.duckdb*"):
                    store.unlink()
                wall, rss, output = measure(command)
                runs.append((wall if label.startswith("etl run") else float(output.split()[0]), rss))
            results.append((label, min(seconds for seconds, _ in runs), max(rss for _, rss in runs)))
        plain = rows / results[0][1]
        print(f"{'':28}{'rows/s':>12}{'vs plain':>10}{'peak RSS':>12}")
        for label, seconds, rss in results:
            rate = rows / seconds
            print(f"{label:28}{rate:>12,.0f}{rate / plain:>9.0%}{rss:>10.0f} MB")


if __name__ == "__main__":
    main()
