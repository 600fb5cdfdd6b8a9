"""Shared by the ``enrich`` tests: synthetic funding, open interest, positioning and liquidations, written into a
real sink through the sink plugin itself (as the sources being built will write them), and the one-shot as-of
join the stored bars must equal, written here in plain polars independently of the transform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from etl.base import PluginContext
from etl.datasets import dataset
from etl.plugins import registry
from etl.timeframes import HOUR, MINUTE, parse_duration, parse_time

START = parse_time("2024-01-01")
SOURCE = "binance"
SYMBOL = "BTC"
KEYS = ("source", "symbol", "timeframe", "ts")


def _typed(columns: dict[str, Any], timeframe: str | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(columns)
    stream = [pl.lit(SOURCE).alias("source"), pl.lit(SYMBOL).alias("symbol")]
    if timeframe:
        stream.append(pl.lit(timeframe).alias("timeframe"))
    ts = pl.from_epoch("ts", "ms").dt.cast_time_unit("ms").dt.replace_time_zone("UTC")
    return frame.with_columns(*stream, ts).select(*[pl.col(name.meta.output_name()) for name in stream],
                                                  pl.all().exclude("source", "symbol", "timeframe"))


def funding(start: int, end: int) -> pl.DataFrame:
    """Settlements every 8 hours from a little before ``start``, one a few milliseconds late (venues are)."""
    ts = np.arange(start - 16 * HOUR, end, 8 * HOUR, dtype=np.int64)
    ts[len(ts) // 2] += 7
    rates = np.round(np.random.default_rng(1).normal(0.0001, 0.0002, len(ts)), 6)
    return _typed({"ts": ts, "funding_rate": rates, "mark_price": 42_000 + np.arange(len(ts), dtype=float)})


def open_interest(start: int, end: int) -> pl.DataFrame:
    """Every 5 minutes with a two-hour outage (bars in it get null within a short tolerance) and a NaN."""
    ts = np.arange(start - HOUR, end, 5 * MINUTE, dtype=np.int64)
    ts = ts[(ts < start + 10 * HOUR) | (ts >= start + 12 * HOUR)]
    values = 80_000 + np.cumsum(np.random.default_rng(2).normal(0, 50, len(ts)))
    values[7] = np.nan
    return _typed({"ts": ts, "open_interest": values, "open_interest_value": values * 42_000})


def positioning(start: int, end: int) -> pl.DataFrame:
    """5-minute and 1-hour periods (the enrich reads one), with the taker volumes the bars may also carry."""
    frames = []
    for timeframe, step in (("5m", 5 * MINUTE), ("1h", HOUR)):
        ts = np.arange(start - HOUR, end, step, dtype=np.int64)
        rng = np.random.default_rng(3 if timeframe == "5m" else 4)
        longs = rng.uniform(0.4, 0.7, len(ts))
        ratio = longs / (1 - longs)
        if timeframe == "5m":
            ratio[20:26] = ratio[20]  # a flat stretch: its z-score is null, never a huge number from rounding
        frames.append(_typed({"ts": ts, "long_short_ratio": ratio, "long_account": longs, "short_account": 1 - longs,
                              "taker_buy_volume": rng.gamma(2.0, 10.0, len(ts)),
                              "taker_sell_volume": rng.gamma(2.0, 10.0, len(ts))}, timeframe))
    return pl.concat(frames)


def liquidations(start: int, end: int) -> pl.DataFrame:
    """Random liquidations, several in some bars, none in most, upper-case sides in part (as Bybit's 'Sell')."""
    rng = np.random.default_rng(5)
    ts = np.sort(rng.integers(start, end, (end - start) // (7 * MINUTE)))
    side = np.where(rng.random(len(ts)) < 0.5, "buy", "sell")
    side[::9] = np.char.capitalize(side[::9].astype(str))
    return _typed({"ts": ts, "side": side, "price": np.round(rng.uniform(41_000, 43_000, len(ts)), 1),
                   "size": np.round(rng.gamma(1.0, 0.5, len(ts)), 3)})


MAKERS = {"funding": funding, "open_interest": open_interest, "positioning": positioning,
          "liquidations": liquidations}


def inputs(start: int, end: int) -> dict[str, pl.DataFrame]:
    return {name: make(start, end) for name, make in MAKERS.items()}


def until(frames: dict[str, pl.DataFrame], end: int) -> dict[str, pl.DataFrame]:
    """Each input cut at ``end`` (what had arrived by then)."""
    limit = pl.lit(end).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    return {name: frame.filter(pl.col("ts") < limit) for name, frame in frames.items()}


def store(folder: Path, sink: dict[str, Any], frames: dict[str, pl.DataFrame]) -> None:
    """Write each frame into its dataset's table through the sink plugin itself: open, store, close."""
    settings = {key: Path(folder, value) if key == "path" else value for key, value in sink.items() if key != "plugin"}
    instance = registry().get("sink", sink["plugin"])(settings, PluginContext("inputs", folder, folder / ".etl"))
    instance.open()
    try:
        for name, frame in frames.items():
            instance.store(frame, dataset(name), name)
    finally:
        instance.close()


def one_shot(bars: pl.DataFrame, frames: dict[str, pl.DataFrame], tolerance: str = "8h",
             positioning_timeframe: str = "5m", gaps: tuple[tuple[int, int], ...] = ()) -> pl.DataFrame:
    """The expected enriched bars: plain as-of joins on the bar's start, liquidations summed per bar start; null
    on the bars nobody listened to whole: those that start before the first liquidation, or overlap one of
    ``gaps`` (epoch ms)."""
    tolerance_td = pl.duration(milliseconds=parse_duration(tolerance))
    out = bars.sort("ts")
    for name in ("funding", "open_interest", "positioning"):
        right = frames[name]
        if name == "positioning":
            right = right.filter(pl.col("timeframe") == positioning_timeframe)
        right = right.drop([key for key in KEYS if key != "ts"], strict=False).sort("ts")
        right = right.rename({column: f"positioning_{column}" for column in right.columns if column in out.columns
                              and column != "ts"})
        right = right.with_columns(pl.col(column).fill_nan(None) for column, kind in right.schema.items()
                                   if kind.is_float())
        values = [column for column in right.columns if column != "ts"]
        joined = out.join_asof(right.with_columns(pl.col("ts").alias("__at")), on="ts", strategy="backward")
        if name != "funding":
            fresh = (pl.col("ts") - pl.col("__at")) <= tolerance_td
            joined = joined.with_columns(pl.when(fresh).then(pl.col(column)).alias(column) for column in values)
        out = joined.drop("__at")
    timeframe = bars["timeframe"][0]
    liquidated = frames["liquidations"].with_columns(pl.col("ts").dt.truncate(timeframe),
                                                     pl.col("side").str.to_lowercase(),
                                                     (pl.col("price") * pl.col("size")).alias("notional"))
    sums = liquidated.group_by("ts", "side").agg(pl.col("size").sum(), pl.col("notional").sum())
    for side in ("buy", "sell"):
        one = sums.filter(pl.col("side") == side).select("ts", pl.col("size").alias(f"liquidation_{side}_size"),
                                                         pl.col("notional").alias(f"liquidation_{side}_notional"))
        out = out.join(one, on="ts", how="left").with_columns(
            pl.col(f"liquidation_{side}_size", f"liquidation_{side}_notional").fill_null(0.0))
    return out.with_columns(pl.when(unheard(out, frames["liquidations"], gaps)).then(None).otherwise(pl.col(column))
                            .alias(column) for column in out.columns if column.startswith("liquidation_"))


def unheard(bars: pl.DataFrame, liquidations: pl.DataFrame, gaps: tuple[tuple[int, int], ...]) -> pl.Series:
    """Per bar, whether nobody listened to all of it, bar by bar in plain Python."""
    first = liquidations["ts"].min()
    first_ms = None if first is None else int(first.timestamp() * 1000)
    timeframe = bars["timeframe"][0]
    ends = bars.select(pl.col("ts").dt.offset_by(timeframe).dt.epoch("ms"))["ts"].to_list()
    flags = []
    for start, end in zip(bars["ts"].dt.epoch("ms").to_list(), ends, strict=True):
        before_first = first_ms is None or start < first_ms
        flags.append(before_first or any(start < gap_end and end > gap_start for gap_start, gap_end in gaps))
    return pl.Series(flags)
