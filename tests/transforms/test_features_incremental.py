"""Warm-up makes incremental runs exact: 150 ``etl run`` calls that each find one new bar store the
same features (to 1e-9 relative) as one run over the whole history.

The one-bar runs start from a checkpoint, so each sees only the warm-up the transform declared (418
bars for rsi_14 and atr_14) before its new bar, and the recursive indicators start from a different
seed every time: only a long enough warm-up makes them agree. Each run is one more seed; 150 of them make
the point as well as the 1000 this test once ran (52 s of CI, 8 s now).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from transform_helpers import candles, pipeline, run, stored, write_input

from etl.testing.checks import check_same_values

HISTORY = 500
NEW_BARS = 150


def assert_same_features(incremental: pl.DataFrame, whole: pl.DataFrame) -> None:
    check_same_values(incremental, whole, "ohlcv/BTC/1m", 1e-9)


def test_one_bar_runs_equal_one_run(tmp_path: Path) -> None:
    series = candles(HISTORY + NEW_BARS, taker=True, seed=11)

    whole_folder = tmp_path / "whole"
    write_input(whole_folder, series)
    assert run(pipeline(whole_folder, [{"plugin": "features"}])).exit_code == 0
    whole = stored(whole_folder)

    folder = tmp_path / "incremental"
    csv = write_input(folder, series.head(HISTORY))
    path = pipeline(folder, [{"plugin": "features"}])
    assert run(path).exit_code == 0
    for row in series.tail(NEW_BARS).iter_rows():
        with csv.open("a") as handle:
            handle.write(",".join(repr(value) for value in row) + "\n")
        result = run(path)
        assert result.exit_code == 0 and "1 rows" in result.summary, str(result)
    incremental = stored(folder)

    assert incremental.height == whole.height == HISTORY + NEW_BARS
    assert incremental["rsi_14"].null_count() == 14
    assert_same_features(incremental, whole)


def test_features_after_resample_get_their_warmup_in_target_bars(tmp_path: Path) -> None:
    """resample 1m -> 1h then features: warm-up composes along the chain, so runs that each add a few
    hours store the same hourly features as one run over everything."""
    chain = [{"plugin": "resample", "to": "1h"}, {"plugin": "features", "include": ["rsi_14", "ema_20", "atr_14"]}]
    series = candles(60 * 600, seed=5)

    whole_folder = tmp_path / "whole"
    write_input(whole_folder, series)
    assert run(pipeline(whole_folder, chain)).exit_code == 0
    whole = stored(whole_folder)

    folder = tmp_path / "incremental"
    csv = write_input(folder, series.head(60 * 500))
    path = pipeline(folder, chain)
    assert run(path).exit_code == 0
    for chunk in range(500, 600, 25):
        with csv.open("a") as handle:
            for row in series.slice(60 * chunk, 60 * 25).iter_rows():
                handle.write(",".join(repr(value) for value in row) + "\n")
        assert run(path).exit_code == 0
    incremental = stored(folder)

    assert whole.height == incremental.height == 600
    assert set(whole["timeframe"]) == {"1h"}
    assert_same_features(incremental, whole)
