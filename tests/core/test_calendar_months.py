"""Calendar months (``1M``): the one timeframe whose bars differ in length, from grid arithmetic to a resumed run."""

from __future__ import annotations

import json
import random

import duckdb
import polars as pl
import pytest

from etl.gaps import Gap, find_gaps
from etl.timeframes import (
    TIMEFRAMES,
    bar_number,
    bar_starts,
    ceil_ts,
    floor_expr,
    floor_ts,
    iso,
    next_bar,
    next_expr,
    number_expr,
    parse_time,
    previous_bar,
)


def ms(text: str) -> int:
    return parse_time(text)


def test_month_bars_start_on_the_first_at_midnight_utc():
    assert iso(floor_ts(ms("2024-02-29T23:59:59Z"), "1M")) == "2024-02-01T00:00:00Z"
    assert iso(next_bar(ms("2024-02-10"), "1M")) == "2024-03-01T00:00:00Z"
    assert iso(next_bar(ms("2023-12-31T12:00:00Z"), "1M")) == "2024-01-01T00:00:00Z"
    assert iso(previous_bar(ms("2024-01-01"), "1M")) == "2023-12-01T00:00:00Z"
    assert iso(ceil_ts(ms("2024-01-01"), "1M")) == "2024-01-01T00:00:00Z"
    assert iso(ceil_ts(ms("2024-01-01T00:00:00.001Z"), "1M")) == "2024-02-01T00:00:00Z"
    assert [iso(start) for start in bar_starts(ms("2023-11-15"), ms("2024-03-01"), "1M")] == [
        "2023-12-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"]
    assert bar_number(ms("2024-01-01"), "1M") - bar_number(ms("2023-12-31"), "1M") == 1


def test_month_arithmetic_before_1970():
    assert iso(floor_ts(ms("1965-07-19T10:00:00Z"), "1M")) == "1965-07-01T00:00:00Z"
    assert iso(next_bar(ms("1969-12-05"), "1M")) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize("timeframe", sorted(TIMEFRAMES))
def test_column_arithmetic_matches_the_scalar_one(timeframe):
    rng = random.Random(timeframe)
    values = [rng.randrange(ms("1990-01-01"), ms("2030-01-01")) for _ in range(500)]
    frame = pl.DataFrame({"ts": values}).select(
        floor_expr(pl.col("ts"), timeframe).alias("floor"), next_expr(pl.col("ts"), timeframe).alias("next"),
        number_expr(pl.col("ts"), timeframe).alias("number"))
    assert frame["floor"].to_list() == [floor_ts(value, timeframe) for value in values]
    assert frame["next"].to_list() == [next_bar(value, timeframe) for value in values]
    assert frame["number"].to_list() == [bar_number(value, timeframe) for value in values]


def test_gaps_count_missing_months_whatever_their_length():
    loaded = pl.Series([ms("2024-01-01"), ms("2024-04-01"), ms("2024-05-01")], dtype=pl.Int64)
    assert find_gaps(loaded, ms("2023-11-01"), "1M") == [
        Gap(ms("2023-12-01"), ms("2024-01-01"), 1), Gap(ms("2024-02-01"), ms("2024-04-01"), 2)]


MONTHLY = """
    [pipelines.monthly.source]
    plugin = "files"
    path = "monthly.csv"
    symbols = ["SPY"]
    timeframes = ["1M"]
    start = "2022-01-01"

    [[pipelines.monthly.sinks]]
    plugin = "duckdb"
    path = "warehouse.duckdb"
"""


def write_months(path, months: list[str]) -> None:
    lines = ["ts,open,high,low,close,volume"]
    lines += [f"{month}T00:00:00Z,{100 + i},{110 + i},{90 + i},{105 + i},{1000 + i}" for i, month in enumerate(months)]
    path.write_text("\n".join(lines) + "\n")


def stored(tmp_path) -> list[tuple[str, float]]:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select strftime(ts, '%Y-%m-%d'), close from ohlcv order by ts").fetchall()
    return rows


def test_monthly_bars_load_resume_from_the_next_month_and_report_a_missing_month(write_pipeline, etl_cli, tmp_path):
    months = [f"2022-{month:02d}-01" for month in range(1, 13) if month != 7] + ["2023-01-01", "2023-02-01"]
    write_months(tmp_path / "monthly.csv", months)
    path = write_pipeline(MONTHLY)
    first = etl_cli("run", str(path))
    assert first.exit_code == 0, first.output
    assert [day for day, _ in stored(tmp_path)] == months
    checkpoint = json.loads((tmp_path / ".etl" / "checkpoints" / "monthly.json").read_text())
    assert checkpoint["streams"]["ohlcv/SPY/1M"]["next"] == "2023-03-01T00:00:00Z"
    gaps = etl_cli("status", "--gaps", str(path)).stdout.splitlines()
    assert gaps[1].split() == ["monthly", "ohlcv/SPY/1M", "2022-07-01T00:00:00Z", "2022-08-01T00:00:00Z", "1"]

    write_months(tmp_path / "monthly.csv", [*months, "2023-03-01", "2023-04-01"])
    second = etl_cli("run", str(path))
    assert second.exit_code == 0, second.output
    assert [day for day, _ in stored(tmp_path)][-3:] == ["2023-02-01", "2023-03-01", "2023-04-01"]
    assert len(stored(tmp_path)) == len(months) + 2
    assert second.stdout.splitlines()[-1].startswith("etl run ok: 1 streams, 2 rows")


def test_the_month_still_forming_is_never_loaded(write_pipeline, etl_cli, tmp_path, frozen_clock):
    from datetime import UTC, datetime

    current = floor_ts(frozen_clock, "1M")  # a month ending mid-test would be loaded
    months = [datetime.fromtimestamp(start / 1000, UTC).strftime("%Y-%m-%d")
              for start in bar_starts(previous_bar(previous_bar(current, "1M"), "1M"), next_bar(current, "1M"), "1M")]
    write_months(tmp_path / "monthly.csv", months)
    result = etl_cli("run", str(write_pipeline(MONTHLY.replace("2022-01-01", months[0]))))
    assert result.exit_code == 0, result.output
    assert [day for day, _ in stored(tmp_path)] == months[:2]
