"""Throughput and peak memory of the ``enrich`` transform: 5M one-minute bars joined with the funding, open
interest and positioning stored beside them in a DuckDB file.

    python bench/bench_enrich.py                   # 50 symbols x 100,000 bars = 5M bars, 2 streams at a time
    python bench/bench_enrich.py --liquidations    # liquidations too (one every 2 minutes per symbol)
    python bench/bench_enrich.py --symbols 10 --bars 20000 --workers 1

A first child process writes the inputs through the DuckDB sink (per symbol: funding every 8 hours, open
interest and 5-minute positioning every 5 minutes, over the bars' span); a second runs the real transform as the
runner calls it, one stream at a time in ``--workers`` threads (the pipeline's ``concurrency``), in batches of
``--batch`` bars (the pipeline's ``batch_rows``), reading its inputs back through ``Sink.read``; like the
runner, which hands each result to the sinks, it keeps no result once counted. Its wall time includes making
the bars (a few percent, printed), and its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import measure

START_MS = 1_704_067_200_000
MINUTE_MS = 60_000
DATASETS = ["funding", "open_interest", "positioning"]


def symbols(count: int) -> list[str]:
    return [f"SYM{index:04d}USDT" for index in range(count)]


def inputs(symbol_count: int, bars: int, liquidations: bool) -> dict[str, Any]:
    """Every symbol's inputs over the bars' span (and an hour before), as the sources would store them."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(3)
    span = (START_MS - 3_600_000, START_MS + (bars + 10) * MINUTE_MS)
    steps = {"funding": 8 * 60 * MINUTE_MS, "open_interest": 5 * MINUTE_MS, "positioning": 5 * MINUTE_MS}
    frames: dict[str, list[Any]] = {name: [] for name in [*DATASETS, "liquidations"]}
    for symbol in symbols(symbol_count):
        for name, step in steps.items():
            ts = np.arange(*span, step, dtype=np.int64)
            frame = pl.DataFrame({"source": "binance", "symbol": symbol, "ts": ts})
            if name == "funding":
                frame = frame.with_columns(funding_rate=pl.Series(rng.normal(0.0001, 0.0002, len(ts))))
            elif name == "open_interest":
                frame = frame.with_columns(open_interest=pl.Series(80_000 + rng.normal(0, 50, len(ts)).cumsum()))
            else:
                longs = rng.uniform(0.4, 0.7, len(ts))
                frame = frame.with_columns(timeframe=pl.lit("5m"), long_short_ratio=pl.Series(longs / (1 - longs)),
                                           long_account=pl.Series(longs), short_account=pl.Series(1 - longs))
            frames[name].append(frame)
        if liquidations:
            ts = np.sort(rng.integers(*span, (span[1] - span[0]) // (2 * MINUTE_MS)))
            frames["liquidations"].append(pl.DataFrame({
                "source": "binance", "symbol": symbol, "ts": ts,
                "side": np.where(rng.random(len(ts)) < 0.5, "buy", "sell"),
                "price": rng.uniform(1, 100, len(ts)), "size": rng.gamma(1.0, 0.5, len(ts))}))
    return {name: pl.concat(parts).with_columns(pl.from_epoch("ts", "ms").dt.cast_time_unit("ms")
                                                 .dt.replace_time_zone("UTC"))
            for name, parts in frames.items() if parts}


def setup(folder: Path, symbol_count: int, bars: int, liquidations: bool) -> None:
    from etl.base import PluginContext
    from etl.datasets import dataset
    from etl.plugins import registry

    sink = registry().get("sink", "duckdb")({"path": folder / "market.duckdb"}, PluginContext("bench", folder, folder))
    sink.open()
    try:
        for name, frame in inputs(symbol_count, bars, liquidations).items():
            sink.store(frame, dataset(name), name)
    finally:
        sink.close()


def template(batch: int) -> Any:
    """One batch of bars; each stream's batches are it with their own symbol and times."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, batch)))
    return pl.DataFrame({"source": "binance", "symbol": "", "timeframe": "1m",
                         "ts": np.arange(batch, dtype=np.int64) * MINUTE_MS, "open": close, "high": close * 1.001,
                         "low": close * 0.999, "close": close, "volume": rng.gamma(2.0, 50.0, batch)})


def enrich(folder: Path, symbol_count: int, bars: int, batch: int, workers: int, liquidations: bool) -> None:
    import polars as pl

    from etl.base import BatchContext, PluginContext, Stream
    from etl.config import SinkSpec
    from etl.plugins import registry
    from etl.report import Tally

    sinks = (SinkSpec("duckdb", {"path": folder / "market.duckdb", "memory_limit": "128MB"}, "bench"),)
    context = PluginContext("bench", folder, folder / ".etl", sinks)
    settings = {"from_sink": "duckdb", "datasets": DATASETS + (["liquidations"] if liquidations else []),
                "tolerance": "30m", "positioning_timeframe": "5m", "every": {"funding": "8h"}}
    base = template(batch)
    making = [0.0]

    def stream(symbol: str) -> int:
        transform = registry().get("transform", "enrich")(settings, context)
        stream, done = Stream("ohlcv", symbol, "1m"), 0
        for first in range(0, bars, batch):
            began = time.perf_counter()
            frame = base.head(min(batch, bars - first)).with_columns(
                pl.lit(symbol).alias("symbol"),
                pl.from_epoch(pl.col("ts") + START_MS + first * MINUTE_MS, "ms").dt.cast_time_unit("ms")
                .dt.replace_time_zone("UTC"))
            making[0] += time.perf_counter() - began
            out = transform.apply(frame, BatchContext(stream, START_MS + first * MINUTE_MS, Tally()))
            done += out.height
        return done

    began, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        total = sum(pool.map(stream, symbols(symbol_count)))
    print(json.dumps({"bars": total, "seconds": time.perf_counter() - began, "cpu": time.process_time() - cpu,
                      "making": making[0]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--bars", type=int, default=100_000, help="bars per symbol")
    parser.add_argument("--batch", type=int, default=100_000, help="bars per batch (the runner's batch_rows)")
    parser.add_argument("--workers", type=int, default=2, help="streams at a time (the pipeline's concurrency)")
    parser.add_argument("--liquidations", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs; the best and the highest RSS shown")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, folder = args.child
        if mode == "setup":
            setup(Path(folder), args.symbols, args.bars, args.liquidations)
        else:
            enrich(Path(folder), args.symbols, args.bars, args.batch, args.workers, args.liquidations)
        return
    shared = [f"--symbols={args.symbols}", f"--bars={args.bars}", f"--batch={args.batch}",
              f"--workers={args.workers}"] + (["--liquidations"] if args.liquidations else [])
    with tempfile.TemporaryDirectory() as folder:
        wall, rss, _ = measure([sys.executable, __file__, *shared, "--child", "setup", folder])
        print(f"inputs stored in {wall:.1f}s (peak RSS {rss:.0f} MB)")
        runs = []
        for _ in range(args.repeat):
            wall, rss, output = measure([sys.executable, __file__, *shared, "--child", "enrich", folder])
            runs.append((json.loads(output.strip().splitlines()[-1]), rss))
    best = min(runs, key=lambda run: run[0]["seconds"])[0]
    peak = max(rss for _, rss in runs)
    print(f"enrich {best['bars']:,} bars ({args.symbols} streams, {args.workers} at a time, batches of "
          f"{args.batch:,}): {best['bars'] / best['seconds'] / 1e6:.2f}M bars/s ({best['seconds']:.2f}s wall, "
          f"{best['cpu']:.2f} CPU-seconds: {best['bars'] / best['cpu'] / 1e6:.2f}M bars per CPU-second; making the "
          f"bars {best['making']:.2f}s summed over threads); peak RSS {peak:.0f} MB")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"command: python bench/bench_enrich.py {' '.join(shared)} --repeat {args.repeat}")


if __name__ == "__main__":
    main()
