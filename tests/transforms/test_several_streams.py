"""A frame holding several streams (a bulk job, the benchmark) gets the same results as each stream on its
own: features never reach across streams, dedup keys include the stream.

The runner hands over one stream per batch, so this is proven on ``apply`` directly, with a real report.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from etl_transforms import DedupTransform, FeaturesTransform, ValidateTransform
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


def test_alignment_is_checked_per_timeframe_in_a_mixed_frame(tmp_path: Path) -> None:
    """Months are the one timeframe of varying length: their rows are aligned on the 1st, not every 31 days."""
    months = stream_frame("BTC", 3, 3).with_columns(
        pl.lit("1M").alias("timeframe"),
        pl.Series("ts", ["2024-02-01", "2024-03-01", "2024-03-15"]).str.to_datetime(time_unit="ms", time_zone="UTC"))
    hours = stream_frame("BTC", 4, 2).with_columns(
        pl.lit("1h").alias("timeframe"),
        pl.Series("ts", ["2024-02-01T01:00:00", "2024-02-01T01:30:00"]).str.to_datetime(time_unit="ms",
                                                                                       time_zone="UTC"))
    kept, counters = apply(ValidateTransform, {"checks": ["aligned"], "on_error": "quarantine"},
                           pl.concat([months, hours]), tmp_path)
    assert kept.select("timeframe", pl.col("ts").dt.strftime("%m-%d %H:%M")).rows() == [
        ("1M", "02-01 00:00"), ("1M", "03-01 00:00"), ("1h", "02-01 01:00")]
    assert counters == {"quarantined": 2}
