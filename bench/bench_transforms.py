"""Throughput and peak memory of validate + dedup + the default features, beside pandas, and end to end.

    python bench/bench_transforms.py            # 25 symbols x 20,000 one-minute candles = 500k rows
    python bench/bench_transforms.py --full     # 250 symbols x 20,000 = 5M rows (the issue's figures)
    python bench/bench_transforms.py --symbols 50 --candles 5000 --breakdown

The input has 1% duplicated candles (half exact repeats, half conflicting versions) and 0.6% bad rows
(high below low, negative price or volume, NaN close, null open, off-grid timestamp). Each measurement runs in
its own process, so its peak RSS is its own:

  polars transforms   the real validate, dedup and features transforms, one stream at a time as the
                      runner calls them (quarantine Parquet files written); like the runner, which hands
                      each result to the sinks, it keeps no result once counted
  pandas transforms   the same checks, dedup and features written the usual pandas way (groupby
                      symbol, rolling, ewm, one frame of results), quarantine written likewise
  etl run             files (CSV per symbol) -> validate -> dedup -> features -> duckdb, through the
                      real runner; --breakdown adds where its time goes (summed over stream threads)

Both transform runs start from the same in-memory frame and end with per-stream results; the script
checks that they agree before printing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import measure

START_MS = 1_704_067_200_000
MINUTE_MS = 60_000
KEY = ["source", "symbol", "timeframe", "ts"]
PRICES = ["open", "high", "low", "close"]
FEATURES = ["return_1", "log_return_1", "volatility_20", "volatility_50", "atr_14", "rsi_14", "sma_20", "ema_20",
            "bb_upper_20", "bb_middle_20", "bb_lower_20", "volume_sma_20", "volume_spike_20", "trend_20",
            "taker_buy_sell_delta", "taker_buy_sell_ratio"]


def make_market(symbols: int, candles: int, seed: int = 7) -> Any:
    """Random-walk candles for many symbols, sorted by symbol and ts, with duplicates and bad rows mixed in."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    rows = symbols * candles
    base = rng.uniform(0.01, 50_000, symbols)[:, None]
    close = base * np.exp(np.cumsum(rng.normal(0, 0.001, (symbols, candles)), axis=1))
    open_ = np.concatenate([base, close[:, :-1]], axis=1)
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.0005, close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.0005, close.shape)))
    volume = rng.gamma(2.0, 50.0, rows)
    frame = pl.DataFrame({
        "source": "files",
        "symbol": np.repeat([f"SYM{index:04d}USDT" for index in range(symbols)], candles),
        "timeframe": "1m",
        "ts": START_MS + np.tile(np.arange(candles, dtype=np.int64), symbols) * MINUTE_MS,
        "open": open_.ravel(), "high": high.ravel(), "low": low.ravel(), "close": close.ravel(),
        "volume": volume, "taker_buy_volume": volume * rng.uniform(0.05, 0.95, rows),
    })
    frame = _spoil(frame, rng.choice(rows, int(rows * 0.006), replace=False))
    repeats = frame[rng.choice(rows, int(rows * 0.01), replace=False)]
    conflicting = pl.int_range(pl.len()) % 2 == 1
    repeats = repeats.with_columns(pl.when(conflicting).then(pl.col("volume") * 1.5).otherwise(pl.col("volume")))
    market = pl.concat([frame, repeats]).sort("symbol", "ts", maintain_order=True)
    return market.with_columns(pl.from_epoch("ts", time_unit="ms").dt.replace_time_zone("UTC"))


def _spoil(frame: Any, rows: Any) -> Any:
    """Give each chosen row one defect, in turn: the six kinds validate must catch."""
    import numpy as np
    import polars as pl

    kinds = np.full(frame.height, -1)
    kinds[rows] = np.arange(len(rows)) % 6
    kind = pl.col("kind")
    return frame.with_columns(pl.Series("kind", kinds)).with_columns(
        pl.when(kind == 0).then(pl.col("low")).otherwise(pl.col("high")).alias("high"),
        pl.when(kind == 0).then(pl.col("high")).otherwise(pl.col("low")).alias("low"),
        pl.when(kind == 1).then(-pl.col("close")).when(kind == 3).then(float("nan")).otherwise(pl.col("close"))
        .alias("close"),
        pl.when(kind == 2).then(-1.0).otherwise(pl.col("volume")).alias("volume"),
        pl.when(kind == 4).then(None).otherwise(pl.col("open")).alias("open"),
        pl.when(kind == 5).then(pl.col("ts") + 30_000).otherwise(pl.col("ts")).alias("ts"),
    ).drop("kind")


def run_polars(market: Any, folder: Path) -> dict[str, Any]:
    """The real transforms, one stream at a time as the runner calls them, with a real run report
    (quarantine files included). The market is sorted by symbol, so each stream is a slice of it, not a copy."""
    from etl_transforms import DedupTransform, FeaturesTransform, ValidateTransform

    from etl.base import BatchContext, PluginContext, Stream
    from etl.report import Report

    context = PluginContext("bench", folder, folder)
    transforms = [ValidateTransform({"checks": None, "on_error": "quarantine"}, context),
                  DedupTransform({"keep": "last"}, context),
                  FeaturesTransform({"include": None, "bb_deviations": 2.0}, context)]
    report = Report("bench", folder / "quarantine-polars")
    rows, sample, offset = 0, None, 0
    for length, symbol in market["symbol"].rle().struct.unnest().iter_rows():
        frame = market.slice(offset, length)
        offset += length
        batch = BatchContext(Stream("ohlcv", symbol, "1m"), START_MS, report)
        for transform in transforms:
            frame = transform.apply(frame, batch)
        rows += frame.height
        sample = sample or _sample(frame)
    totals: dict[str, int] = {}
    for result in report.streams.values():
        for name, value in result.counters.items():
            totals[name] = totals.get(name, 0) + value
    return {"rows": rows, "counters": totals, "sample": sample}


def _sample(frame: Any) -> dict[str, list[float | None]]:
    """A few feature values of the first stream, to check both implementations agree."""
    rows = frame.tail(5)
    return {name: [None if value != value else value for value in rows[name].to_list()] for name in FEATURES}


def run_pandas(market: Any, folder: Path) -> dict[str, Any]:
    """The same work the way a pandas pipeline does it: masks, drop_duplicates, groupby + rolling/ewm."""
    import numpy as np
    import pandas as pd

    folder = folder / "quarantine-pandas"
    folder.mkdir(exist_ok=True)
    frame = market
    ms = (frame["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    floats = frame[[*PRICES, "volume"]]
    missing = frame[KEY].isna().any(axis=1) | frame[PRICES].isna().any(axis=1)
    flags = {
        "not_null": missing.to_numpy(),
        "finite": (np.isinf(floats).any(axis=1)).to_numpy(),
        "positive_prices": (frame[PRICES] <= 0).any(axis=1).to_numpy(),
        "non_negative": ((frame["volume"] < 0) | (frame["taker_buy_volume"] < 0)).to_numpy(),
        "ohlc_consistent": ((frame["high"] < frame[["open", "close"]].max(axis=1))
                            | (frame["low"] > frame[["open", "close"]].min(axis=1))
                            | (frame["high"] < frame["low"])).to_numpy(),
        "aligned": (ms % MINUTE_MS != 0).to_numpy(),
        "not_future": (ms > int(time.time() * 1000)).to_numpy(),
    }
    bad = np.logical_or.reduce(list(flags.values()))
    rejected = frame[bad].copy()
    rejected["reason"] = [", ".join(name for name, flag in flags.items() if flag[row]) for row in np.flatnonzero(bad)]
    for symbol, rows in rejected.groupby("symbol"):
        rows.to_parquet(folder / f"{symbol}.parquet")
    frame = frame[~bad]
    repeated = frame[frame.duplicated(KEY, keep=False)]
    versions = repeated.drop_duplicates().groupby(KEY).size()
    counters = {"quarantined": int(bad.sum()), "duplicates": int(len(repeated) - versions.sum()),
                "dedup_conflicts": int((versions - 1).sum())}
    frame = frame.drop_duplicates(KEY, keep="last")
    outputs = [_pandas_features(group) for _, group in frame.groupby("symbol", sort=False)]
    rows = pd.concat(outputs)
    return {"rows": len(rows), "counters": counters, "sample": {
        name: [None if pd.isna(value) else float(value) for value in outputs[0][name].tail(5)] for name in FEATURES}}


def _seeded_ewm(values: Any, n: int, alpha: float, seed_row: int) -> Any:
    seeded = values.copy()
    seeded.iloc[:seed_row] = float("nan")
    seeded.iloc[seed_row] = values.iloc[seed_row - n + 1:seed_row + 1].mean()
    return seeded.ewm(alpha=alpha, adjust=False).mean()


def _pandas_features(group: Any) -> Any:
    import numpy as np

    close, high, low, volume = group["close"], group["high"], group["low"], group["volume"]
    previous = close.shift(1)
    log_return = np.log(close / previous)
    true_range = np.maximum(high, previous.fillna(high)) - np.minimum(low, previous.fillna(low))
    change = close.diff()
    gain = _seeded_ewm(change.clip(lower=0), 14, 1 / 14, 14)
    loss = _seeded_ewm((-change).clip(lower=0), 14, 1 / 14, 14)
    total = gain + loss
    sma = close.rolling(20).mean()
    deviation = close.rolling(20).std(ddof=0)
    volume_sma = volume.rolling(20).mean()
    taker = group["taker_buy_volume"]
    return group.assign(
        return_1=(close - previous) / previous, log_return_1=log_return,
        volatility_20=log_return.rolling(20).std(), volatility_50=log_return.rolling(50).std(),
        atr_14=_seeded_ewm(true_range, 14, 1 / 14, 14),
        rsi_14=np.where(total > 0, 100 * gain / total, np.where(total.isna(), np.nan, 0.0)),
        sma_20=sma, ema_20=_seeded_ewm(close, 20, 2 / 21, 19), bb_upper_20=sma + 2 * deviation, bb_middle_20=sma,
        bb_lower_20=sma - 2 * deviation, volume_sma_20=volume_sma, volume_spike_20=volume / volume_sma,
        trend_20=np.sign(close - close.shift(20)), taker_buy_sell_delta=taker - (volume - taker),
        taker_buy_sell_ratio=taker / (volume - taker),
    )


PIPELINE = """
[pipelines.bench.source]
plugin = "files"
path = "data/{{symbol}}.csv"
symbols = [{symbols}]
timeframes = ["1m"]
start = "2024-01-01"

[[pipelines.bench.transforms]]
plugin = "validate"

[[pipelines.bench.transforms]]
plugin = "dedup"

[[pipelines.bench.transforms]]
plugin = "features"

[[pipelines.bench.sinks]]
plugin = "duckdb"
path = "bench.duckdb"
"""


def run_pipeline(folder: Path, breakdown: bool) -> dict[str, Any]:
    """``etl run`` of the bench pipeline in this process; optionally timing each component."""
    from etl import config, runner

    timings = _instrument() if breakdown else {}
    outcome = runner.run(config.load(folder / "pipelines.toml"), ())
    failed = [result.error for result in outcome.results if result.error]
    if failed:
        raise SystemExit(f"etl run failed: {failed[0]}")
    streams = sum(result.duration for result in outcome.results)
    counters: dict[str, int] = {}
    for result in outcome.results:
        for name, value in result.counters.items():
            counters[name] = counters.get(name, 0) + value
    return {"rows": sum(result.rows for result in outcome.results), "counters": counters,
            "stream_seconds": streams, "timings": timings}


def _instrument() -> dict[str, float]:
    """Wrap the components a batch goes through so their time is added up across stream threads."""
    import threading

    import etl_duckdb
    import etl_files
    import etl_transforms

    import etl.checkpoint
    import etl.datasets

    timings: dict[str, float] = {}
    lock = threading.Lock()

    def add(name: str, seconds: float) -> None:
        with lock:
            timings[name] = timings.get(name, 0.0) + seconds

    def timed(owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(name, time.perf_counter() - started)

        setattr(owner, attribute, wrapper)

    def timed_generator(owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            iterator = original(*args, **kwargs)
            while True:
                started = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    add(name, time.perf_counter() - started)
                    return
                add(name, time.perf_counter() - started)
                yield item

        setattr(owner, attribute, wrapper)

    timed_generator(etl_files.FilesSource, "fetch", "files source: read CSV")
    timed(etl.datasets, "conform", "core: conform batch")
    for transform in (etl_transforms.ValidateTransform, etl_transforms.DedupTransform,
                      etl_transforms.FeaturesTransform):
        timed(transform, "apply", f"transform: {transform.name}")
    timed(etl_duckdb.DuckDBSink, "write", "duckdb sink: write")
    timed(etl.checkpoint.Checkpoints, "advance", "core: checkpoint")
    return timings


def child(mode: str, folder: Path, breakdown: bool, symbols: int, candles: int) -> None:
    """One step in this process: write the inputs, or one measurement (prints seconds and the result as JSON)."""
    if mode == "inputs":
        print(json.dumps({"rows": write_inputs(folder, symbols, candles)}))
        return
    if mode == "pipeline":
        started, cpu = time.perf_counter(), time.process_time()
        result = run_pipeline(folder, breakdown)
    elif mode == "polars":
        import polars as pl

        from etl.datasets import dataset

        market = pl.read_parquet(folder / "market.parquet")
        dataset("ohlcv")  # loads the plugin registry once, as `etl run` does with the pipeline file
        started, cpu = time.perf_counter(), time.process_time()
        result = run_polars(market, folder)
    else:
        import pandas as pd

        market = pd.read_parquet(folder / "market.parquet")
        started, cpu = time.perf_counter(), time.process_time()
        result = run_pandas(market, folder)
    print(json.dumps({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, **result}))


def write_inputs(folder: Path, symbols: int, candles: int) -> int:
    """market.parquet for the transform runs, one CSV per symbol and a pipeline file for ``etl run``."""
    import polars as pl

    market = make_market(symbols, candles)
    market.write_parquet(folder / "market.parquet")
    (folder / "data").mkdir()
    names = []
    for (symbol,), rows in market.partition_by("symbol", maintain_order=True, as_dict=True).items():
        names.append(symbol)
        rows.drop("source", "symbol", "timeframe").with_columns(pl.col("ts").dt.epoch("ms")).write_csv(
            folder / "data" / f"{symbol}.csv")
    (folder / "pipelines.toml").write_text(PIPELINE.format(symbols=", ".join(f'"{name}"' for name in names)))
    return market.height


def agree(polars_run: dict[str, Any], pandas_run: dict[str, Any]) -> None:
    """Stop if the two implementations did not do the same work."""
    for name in ("rows", "counters"):
        if polars_run[name] != pandas_run[name]:
            raise SystemExit(f"polars and pandas differ in {name}: {polars_run[name]} vs {pandas_run[name]}")
    for name, values in polars_run["sample"].items():
        for ours, theirs in zip(values, pandas_run["sample"][name], strict=True):
            if (ours is None) != (theirs is None) or (ours is not None and abs(ours - theirs) > 1e-9 * abs(theirs)):
                raise SystemExit(f"polars and pandas differ on {name}: {values} vs {pandas_run['sample'][name]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="250 symbols x 20,000 candles (5M rows)")
    parser.add_argument("--symbols", type=int, default=25)
    parser.add_argument("--candles", type=int, default=20_000)
    parser.add_argument("--breakdown", action="store_true", help="time each component of etl run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    symbols = 250 if args.full else args.symbols
    if args.child:
        child(args.child, args.folder, args.breakdown, symbols, args.candles)
        return
    with tempfile.TemporaryDirectory() as tmp:
        sizes = ["--symbols", str(symbols), "--candles", str(args.candles)]
        rows = _run_child("inputs", tmp, sizes)[0]["rows"]
        print(f"{symbols} symbols x {args.candles:,} candles + 1% duplicates = {rows:,} rows, 0.6% bad", flush=True)
        results = {}
        for mode in ("polars", "pandas", "pipeline"):
            result, rss = _run_child(mode, tmp, ["--breakdown"] if args.breakdown else [])
            results[mode] = {**result, "rss": rss}
        agree(results["polars"], results["pandas"])
        report(rows, results)


def _run_child(mode: str, folder: str, extra: list[str]) -> tuple[dict[str, Any], float]:
    """Run one step in a child process: its JSON result and its peak RSS in MB.

    The inputs are built in a child too: a child's peak RSS starts at its parent's (Linux carries the
    parent's high-water mark over fork and exec), so a parent that had held the market would inflate
    every figure.
    """
    _, rss, output = measure([sys.executable, __file__, "--child", mode, "--folder", folder, *extra])
    return json.loads(output.strip().splitlines()[-1]), rss


def report(rows: int, results: dict[str, dict[str, Any]]) -> None:
    labels = {"polars": "validate+dedup+features (polars)", "pandas": "the same in pandas",
              "pipeline": "etl run files -> duckdb"}
    print(f"{'':36}{'seconds':>9}{'rows/s':>13}{'CPU s':>8}{'peak RSS':>11}")
    for mode, label in labels.items():
        result = results[mode]
        print(f"{label:36}{result['seconds']:>9.2f}{rows / result['seconds']:>13,.0f}{result['cpu']:>8.2f}"
              f"{result['rss']:>8.0f} MB")
    polars, pandas = results["polars"], results["pandas"]
    print(f"polars transforms vs pandas: {pandas['seconds'] / polars['seconds']:.1f}x wall time, "
          f"{pandas['cpu'] / polars['cpu']:.1f}x CPU time; counters {polars['counters']}")
    timings = results["pipeline"]["timings"]
    if timings:
        total = results["pipeline"]["stream_seconds"]
        print(f"etl run: {total:.2f} s in stream threads, of which:")
        for name, seconds in sorted(timings.items(), key=lambda item: -item[1]):
            print(f"  {name:32}{seconds:>8.2f} s {seconds / total:>6.0%}")
        rest = total - sum(timings.values())
        print(f"  {'runner (concat, sort, filter, unique)':32}{rest:>8.2f} s {rest / total:>6.0%}")


if __name__ == "__main__":
    main()
