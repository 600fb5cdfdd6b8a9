"""A frame holding several streams (a bulk job, the benchmark) gets the same results as each stream on its
own: features never reach across streams, dedup keys include the stream.

The runner hands over one stream per batch, so this is proven on ``apply`` directly, with a real report.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from etl_transforms import DedupTransform, FeaturesTransform
from transform_helpers import candles

from etl.base import BatchContext, PluginContext, Stream
from etl.report import Report


def stream_frame(symbol: str, seed: int, rows: int = 300) -> pl.DataFrame:
    frame = candles(rows, seed=seed, taker=True)
    return frame.select(
        pl.lit("files").alias("source"), pl.lit(symbol).alias("symbol"), pl.lit("1m").alias("timeframe"),
        pl.from_epoch("ts", time_unit="ms").dt.replace_time_zone("UTC"), pl.exclude("ts"))


def apply(transform_class: type, settings: dict, frame: pl.DataFrame, tmp_path: Path) -> tuple[pl.DataFrame, dict]:
    stream = Stream("ohlcv", "ALL", "1m")
    report = Report("test", tmp_path / "quarantine")
    transform = transform_class(settings, PluginContext("test", tmp_path, tmp_path))
    return transform.apply(frame, BatchContext(stream, 0, report)), report.result(stream).counters


def test_features_stay_within_each_stream(tmp_path: Path) -> None:
    btc, eth = stream_frame("BTC", 1), stream_frame("ETH", 2)
    settings = {"include": None, "bb_deviations": 2.0}
    both, _ = apply(FeaturesTransform, settings, pl.concat([btc, eth]), tmp_path)
    for alone in (btc, eth):
        expected, _ = apply(FeaturesTransform, settings, alone, tmp_path)
        assert both.filter(pl.col("symbol") == alone["symbol"][0]).equals(expected)
    assert both.filter(pl.col("symbol") == "ETH")["rsi_14"].null_count() == 14


def test_dedup_keys_include_the_stream(tmp_path: Path) -> None:
    btc, eth = stream_frame("BTC", 1, 20), stream_frame("ETH", 2, 20)
    repeated = eth.slice(4, 1).with_columns(pl.col("close") * 2)
    kept, counters = apply(DedupTransform, {"keep": "last"}, pl.concat([btc, eth, repeated]), tmp_path)
    assert kept.height == 40
    survivor = kept.filter((pl.col("symbol") == "ETH") & (pl.col("ts") == repeated["ts"][0]))
    assert survivor["close"].to_list() == repeated["close"].to_list()
    assert counters == {"dedup_conflicts": 1}
