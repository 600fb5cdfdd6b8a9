"""Option mistakes stop ``etl run`` before anything runs (exit 2) with the key and where it was written;
mistakes that depend on the data (a feature for another dataset) fail that stream (exit 1)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from transform_helpers import candles, pipeline, run, write_input

from etl.timeframes import parse_time

WHERE = "pipelines.test.transforms[0]"


@pytest.mark.parametrize(("transform", "key", "message"), [
    ({"plugin": "features", "include": ["rsi_x"]}, "include", "unknown feature 'rsi_x'; known: return_N"),
    ({"plugin": "features", "include": []}, "include", "name at least one feature"),
    ({"plugin": "features", "include": ["rsi_1"]}, "include", "rsi_1: the window must be between 2 and 100000"),
    ({"plugin": "features", "include": ["sma_20", "sma_20"]}, "include", "'sma_20' is listed twice"),
    ({"plugin": "features", "include": "rsi_14"}, "include", "must be a list"),
    ({"plugin": "features", "bb_deviations": 0}, "bb_deviations", "positive number of standard deviations"),
    ({"plugin": "validate", "checks": ["bogus"]}, "checks", "valid values: not_null, finite"),
    ({"plugin": "validate", "checks": []}, "checks", "name at least one check"),
    ({"plugin": "validate", "on_error": "ignore"}, "on_error", "valid values: quarantine, fail"),
    ({"plugin": "dedup", "keep": "middle"}, "keep", "valid values: last, first"),
    ({"plugin": "dedup", "kep": "last"}, "kep", "valid keys: keep"),
    ({"plugin": "resample"}, "to", "Missing required key"),
    ({"plugin": "resample", "to": "7m"}, "to", "valid values: 1s, 1m"),
])
def test_bad_options_are_configuration_errors(tmp_path: Path, transform: dict, key: str, message: str) -> None:
    write_input(tmp_path, candles(5))
    result = run(pipeline(tmp_path, [transform]))
    assert result.exit_code == 2, str(result)
    assert f"'{key}'" in result.output and WHERE in result.output and message in result.output, result.output
    assert not (tmp_path / "out.duckdb").exists()


def test_resample_is_for_candles_only(tmp_path: Path) -> None:
    result = run(pipeline(tmp_path, [{"plugin": "resample", "to": "1d"}], dataset="funding", timeframe=None))
    assert result.exit_code == 2
    assert "'resample'" in result.output and "funding" in result.output


def test_a_feature_for_another_dataset_fails_the_stream(tmp_path: Path) -> None:
    write_input(tmp_path, pl.DataFrame({"ts": [parse_time("2024-01-01")], "funding_rate": [0.0001]}))
    result = run(pipeline(tmp_path, [{"plugin": "features", "include": ["rsi_14"]}], dataset="funding",
                          timeframe=None))
    assert result.exit_code == 1
    assert "rsi_14 needs ohlcv data, but funding/BTC is funding" in result.output
    assert "features for funding: funding_rate_percentile_90" in result.output


def test_a_feature_without_its_column_fails_the_stream(tmp_path: Path) -> None:
    write_input(tmp_path, candles(5))
    result = run(pipeline(tmp_path, [{"plugin": "features", "include": ["taker_buy_sell_ratio"]}]))
    assert result.exit_code == 1
    assert "taker_buy_sell_ratio needs a numeric column 'taker_buy_volume'" in result.output
