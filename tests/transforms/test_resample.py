"""``resample``: coarser bars aligned to UTC boundaries, OHLC first/max/min/last, volume and extras summed,
never a trailing bar that still misses sub-bars, and the same bars however the input arrives."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from transform_helpers import candles, counters, pipeline, run, stored, write_input

from etl.timeframes import parse_time

CLEAN = [{"plugin": "validate"}, {"plugin": "dedup"}]


def minute_candles(start: str, rows: int) -> pl.DataFrame:
    frame = candles(rows, start=start, seed=3)
    return frame.with_columns(pl.int_range(pl.len()).alias("trades") % 50 + 1,
                              (pl.col("volume") * pl.col("close")).alias("quote_volume"))


def aggregate(frame: pl.DataFrame) -> dict[str, float]:
    """One bar from its sub-bars, computed with numpy."""
    return {"open": frame["open"][0], "high": np.max(frame["high"].to_numpy()),
            "low": np.min(frame["low"].to_numpy()), "close": frame["close"][-1],
            "volume": float(np.sum(frame["volume"].to_numpy())), "trades": int(frame["trades"].sum()),
            "quote_volume": float(np.sum(frame["quote_volume"].to_numpy()))}


def assert_bar(bar: dict, expected: dict) -> None:
    for name, value in expected.items():
        assert bar[name] == pytest.approx(value, rel=1e-12), name


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_minutes_to_hours(tmp_path: Path) -> None:
    """Input from 00:30 to 05:37: 00:00 is built from the sub-bars there are, 05:00 is not finished."""
    frame = minute_candles("2024-01-01T00:30:00", 307)
    write_input(tmp_path, frame)
    transforms = [*CLEAN, {"plugin": "resample", "to": "1h"}, {"plugin": "validate"}]
    result = run(pipeline(tmp_path, transforms))
    assert result.exit_code == 0, str(result)
    table = stored(tmp_path)
    assert table["ts"].to_list() == [utc(f"2024-01-01T0{hour}:00") for hour in range(5)]
    assert set(table["timeframe"]) == {"1h"}
    assert table.columns == ["source", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume",
                             "trades", "quote_volume"]
    assert_bar(table.row(0, named=True), aggregate(frame.head(30)))
    for hour in range(1, 5):
        assert_bar(table.row(hour, named=True), aggregate(frame.slice(30 + 60 * (hour - 1), 60)))
    assert not counters(tmp_path)["quarantined"], "resampled bars are aligned to their own timeframe"
    checkpoint = json.loads((tmp_path / ".etl" / "checkpoints" / "test.json").read_text())
    assert "ohlcv/BTC/1m" in json.dumps(checkpoint), "the checkpoint stays on the input stream"


def test_days_start_at_midnight_and_weeks_on_monday(tmp_path: Path) -> None:
    """Hourly input from Wednesday 2024-01-03 to Monday 2024-01-22 23:00."""
    frame = candles(20 * 24, start="2024-01-03", timeframe="1h", seed=4)
    write_input(tmp_path / "days", frame)
    write_input(tmp_path / "weeks", frame)
    for folder, to in (("days", "1d"), ("weeks", "1w")):
        path = pipeline(tmp_path / folder, [{"plugin": "resample", "to": to}], timeframe="1h")
        assert run(path).exit_code == 0
    days = stored(tmp_path / "days")
    assert days["ts"].to_list() == [utc(f"2024-01-{day:02d}") for day in range(3, 23)]
    weeks = stored(tmp_path / "weeks")
    assert weeks["ts"].to_list() == [utc("2024-01-01"), utc("2024-01-08"), utc("2024-01-15")]
    assert all(ts.weekday() == 0 for ts in weeks["ts"])
    week = frame.slice(5 * 24, 7 * 24)
    assert weeks["high"][1] == week["high"].max() and weeks["open"][1] == week["open"][0]
    assert weeks["volume"][1] == pytest.approx(week["volume"].sum(), rel=1e-12)



def test_months_start_on_the_first_and_validate_accepts_them(tmp_path: Path) -> None:
    """Daily input from 2023-12-15 to 2024-04-10 (a leap February): Dec is partial at the start, Apr unfinished."""
    frame = candles(118, start="2023-12-15", timeframe="1d", seed=5)
    write_input(tmp_path, frame)
    path = pipeline(tmp_path, [*CLEAN, {"plugin": "resample", "to": "1M"}, {"plugin": "validate"}], timeframe="1d",
                    start="2023-12-01")
    result = run(path)
    assert result.exit_code == 0, str(result)
    months = stored(tmp_path)
    assert months["ts"].to_list() == [utc("2023-12-01"), utc("2024-01-01"), utc("2024-02-01"), utc("2024-03-01")]
    assert set(months["timeframe"]) == {"1M"}
    february = frame.slice(17 + 31, 29)
    assert months["open"][2] == february["open"][0] and months["close"][2] == february["close"][-1]
    assert months["high"][2] == february["high"].max() and months["low"][2] == february["low"].min()
    assert not counters(tmp_path)["quarantined"], "monthly bars start on the 1st, so validate keeps them"

def test_a_bar_missing_its_last_sub_bar_is_emitted_once_later_data_arrives(tmp_path: Path) -> None:
    frame = minute_candles("2024-01-01", 150)
    gap = parse_time("2024-01-01T01:59:00")
    write_input(tmp_path, frame.filter(pl.col("ts") != gap))
    assert run(pipeline(tmp_path, [{"plugin": "resample", "to": "1h"}])).exit_code == 0
    table = stored(tmp_path)
    assert table["ts"].to_list() == [utc("2024-01-01T00:00"), utc("2024-01-01T01:00")]
    assert table["close"][1] == frame["close"][118]


def test_batches_and_incremental_runs_give_the_same_bars(tmp_path: Path) -> None:
    frame = minute_candles("2024-01-01", 5 * 60 + 17)
    ends = ["2024-01-01T01:17:00", "2024-01-01T02:59:00", "2024-01-01T03:00:00", "2024-01-01T04:45:00"]
    stores = {}
    for name, runs, keys in (("whole", [None], {}), ("batches", [None], {"batch_rows": 7}),
                             ("incremental", [*ends, None], {})):
        folder = tmp_path / name
        write_input(folder, frame)
        for end in runs:
            transforms = [{"plugin": "resample", "to": "1h"}]
            path = pipeline(folder, transforms, end=end, **keys)
            if keys:
                text = path.read_text().replace('plugin = "files"', 'plugin = "files"\nbatch_rows = 7')
                path.write_text(text)
            result = run(path)
            assert result.exit_code == 0, str(result)
        stores[name] = stored(folder)
    assert stores["whole"].height == 5
    assert stores["batches"].equals(stores["whole"])
    assert stores["incremental"].equals(stores["whole"])


@pytest.mark.parametrize(("timeframe", "to"), [("1h", "1m"), ("1h", "1h"), ("3d", "1w"), ("90m", "4h")])
def test_a_target_not_made_of_whole_input_bars_fails_the_stream(tmp_path: Path, timeframe: str, to: str) -> None:
    write_input(tmp_path, candles(3, timeframe=timeframe))
    result = run(pipeline(tmp_path, [{"plugin": "resample", "to": to}], timeframe=timeframe))
    assert result.exit_code == 1
    assert f"cannot build {to} bars from the {timeframe} bars of ohlcv/BTC/{timeframe}" in result.output
