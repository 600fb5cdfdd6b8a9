"""``dedup``: one row per key survives (``keep`` chooses which), exact repeats and conflicting versions
are counted apart in the run ledger."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from transform_helpers import candles, counters, pipeline, run, stored, write_input

from etl.timeframes import parse_time


def with_repeats(frame: pl.DataFrame) -> pl.DataFrame:
    """Row 3 three times (two exact repeats); row 7 twice with another close (a conflict); row 9 as A, A, B."""
    def copy(index: int, **changes: float) -> pl.DataFrame:
        return frame.slice(index, 1).with_columns(pl.lit(value).alias(name) for name, value in changes.items())

    extra = [copy(3), copy(3), copy(7, close=1.0), copy(9), copy(9, volume=0.5)]
    return pl.concat([frame, *extra]).sort("ts", maintain_order=True)


@pytest.mark.parametrize(("keep", "close_7", "volume_9"), [("last", 1.0, 0.5), ("first", None, None)])
def test_repeated_keys_collapse_to_the_kept_version(tmp_path: Path, keep: str, close_7, volume_9) -> None:
    frame = candles(20)
    write_input(tmp_path, with_repeats(frame))
    result = run(pipeline(tmp_path, [{"plugin": "dedup", "keep": keep}]))
    assert result.exit_code == 0, str(result)
    table = stored(tmp_path)
    assert table.height == 20
    assert table["close"][7] == (close_7 if close_7 is not None else frame["close"][7])
    assert table["volume"][9] == (volume_9 if volume_9 is not None else frame["volume"][9])
    assert table["close"][3] == frame["close"][3]
    totals = counters(tmp_path)
    assert totals["duplicates"] == 3
    assert totals["dedup_conflicts"] == 2
    assert not totals["duplicates_dropped"], "the runner found nothing left to drop"


def test_clean_input_counts_nothing(tmp_path: Path) -> None:
    write_input(tmp_path, candles(20))
    assert run(pipeline(tmp_path, [{"plugin": "dedup"}])).exit_code == 0
    assert stored(tmp_path).height == 20
    assert not counters(tmp_path)["duplicates"] and not counters(tmp_path)["dedup_conflicts"]


def test_funding_is_deduplicated_on_its_own_key(tmp_path: Path) -> None:
    start = parse_time("2024-01-01")
    eight_hours = 8 * 3_600_000
    frame = pl.DataFrame({"ts": [start, start + eight_hours, start + eight_hours, start + 2 * eight_hours],
                          "funding_rate": [0.0001, 0.0002, 0.0003, 0.0001]})
    write_input(tmp_path, frame)
    result = run(pipeline(tmp_path, [{"plugin": "dedup"}], dataset="funding", timeframe=None))
    assert result.exit_code == 0, str(result)
    assert stored(tmp_path, "funding")["funding_rate"].to_list() == [0.0001, 0.0003, 0.0001]
    assert counters(tmp_path)["dedup_conflicts"] == 1


def test_features_refuse_repeated_bars_and_say_how_to_fix_it(tmp_path: Path) -> None:
    write_input(tmp_path, with_repeats(candles(20)))
    result = run(pipeline(tmp_path, [{"plugin": "features"}]))
    assert result.exit_code == 1
    assert "ohlcv/BTC/1m has 5 row(s) repeating" in result.output
    assert "put the dedup transform before features" in result.output
    fixed = run(pipeline(tmp_path, [{"plugin": "dedup"}, {"plugin": "features"}]))
    assert fixed.exit_code == 0, str(fixed)
