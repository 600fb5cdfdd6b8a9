"""Warm-up is counted in rows: series with missing bars store the same features whether they were loaded
in one run, grown over ten runs, or backfilled in the middle.

Real 1m candles miss minutes (no trade, maintenance). A warm-up turned into time (rows x timeframe) then
holds fewer rows than the features need: windowed features come out null and recursive ones drift. Each
pattern below provokes that: scattered single minutes, long holes, and holes right at a run's checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from transform_helpers import candles, pipeline, run, stored, write_input

from etl.testing import run_cli
from etl.testing.checks import check_same_values
from etl.timeframes import MINUTE, iso, parse_time

START = parse_time("2024-01-01")
BARS = 6_000
FEATURES = [{"plugin": "features", "include": [
    "return_1", "log_return_1", "volatility_20", "volatility_50", "atr_14", "rsi_14", "sma_20", "ema_20",
    "bb_upper_20", "bb_middle_20", "bb_lower_20", "volume_sma_20", "volume_spike_20", "trend_20", "ema_50",
]}]
TOLERANCE = 1e-12


def scattered(rows: int) -> np.ndarray:
    """About 4% of minutes missing, one here and there."""
    return np.random.default_rng(3).random(rows) < 0.04


def long_holes(rows: int) -> np.ndarray:
    missing = np.zeros(rows, dtype=bool)
    for first, length in ((900, 700), (2_500, 30), (4_000, 1_200)):
        missing[first:first + length] = True
    return missing


def holes_at_checkpoints(rows: int) -> np.ndarray:
    """Holes at each run's cut (every 500 bars from bar 1,000): a long one ending three bars before it,
    so the next run's warm-up reaches across it, or one starting at it, so the next run begins late."""
    missing = scattered(rows)
    for cut in range(1_000, rows, 500):
        if cut % 1_000:
            missing[cut:cut + 50] = True
        else:
            missing[cut - 900:cut - 3] = True
    return missing


PATTERNS = {"scattered": scattered, "long_holes": long_holes, "holes_at_checkpoints": holes_at_checkpoints}


def series(pattern: str) -> pl.DataFrame:
    frame = candles(BARS, seed=17, taker=True)
    return frame.filter(~pl.Series(PATTERNS[pattern](BARS)))


def assert_same(actual: pl.DataFrame, expected: pl.DataFrame) -> float:
    return check_same_values(actual, expected, "ohlcv/BTC/1m", TOLERANCE)


def append(csv: Path, rows: pl.DataFrame) -> None:
    with csv.open("a") as handle:
        for row in rows.iter_rows():
            handle.write(",".join(repr(value) for value in row) + "\n")


def one_shot(folder: Path, data: pl.DataFrame) -> pl.DataFrame:
    write_input(folder, data)
    assert run(pipeline(folder, FEATURES)).exit_code == 0
    return stored(folder)


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_ten_runs_equal_one_run_and_a_backfill(tmp_path: Path, pattern: str) -> None:
    data = series(pattern)
    whole = one_shot(tmp_path / "whole", data)
    assert whole.height == data.height

    folder = tmp_path / "steps"
    cuts = [START + bar * MINUTE for bar in range(1_000, BARS, 500)][:10]
    csv = write_input(folder, data.filter(pl.col("ts") < cuts[0]))
    path = pipeline(folder, FEATURES)
    assert run(path).exit_code == 0
    for low, high in zip(cuts, [*cuts[1:], None], strict=True):
        grown = data.filter(pl.col("ts") >= low)
        append(csv, grown if high is None else grown.filter(pl.col("ts") < high))
        result = run(path)
        assert result.exit_code == 0, str(result)
    assert_same(stored(folder), whole)

    middle = tmp_path / "middle"
    write_input(middle, data)
    lower, upper = START + 2_200 * MINUTE, START + 4_700 * MINUTE
    backfill_path = pipeline(middle, FEATURES)
    result = run_cli("backfill", str(backfill_path), "--pipeline", "test", "--start", iso(lower), "--end", iso(upper))
    assert result.exit_code == 0, str(result)
    assert_same(stored(middle), whole.filter(pl.col("ts").dt.epoch("ms").is_between(lower, upper, "left")))


def test_backfill_over_stored_rows_keeps_their_values(tmp_path: Path) -> None:
    """A mid-range backfill over a one-shot load rewrites the same values, not drifted ones."""
    folder = tmp_path / "whole"
    whole = one_shot(folder, series("long_holes"))
    path = folder / "pipelines.toml"
    result = run_cli("backfill", str(path), "--pipeline", "test", "--start", iso(START + 1_650 * MINUTE),
                     "--end", iso(START + 4_300 * MINUTE))
    assert result.exit_code == 0, str(result)
    assert_same(stored(folder), whole)


def test_series_starting_inside_the_warmup_stays_null_where_one_run_is(tmp_path: Path) -> None:
    """A series that begins a few bars before the first run's window: nulls exactly as one run over it."""
    data = series("scattered")
    whole = one_shot(tmp_path / "whole", data)
    folder = tmp_path / "steps"
    csv = write_input(folder, data.head(30))
    path = pipeline(folder, FEATURES)
    assert run(path).exit_code == 0
    append(csv, data.slice(30))
    assert run(path).exit_code == 0
    assert_same(stored(folder), whole)
    assert whole["sma_20"].null_count() == 19
