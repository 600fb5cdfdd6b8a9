"""Second klines, which only the spot archive has: daily files with µs open times (spot since 2025) read as
the REST source's bars, a bad day healed from REST."""

from __future__ import annotations

from archive_support import MONTHS, day_name, month_name

from etl.testing import run_cli
from etl.timeframes import DAY


def test_second_bars_from_daily_files_in_ms_and_us_and_a_bad_day_healed(project, vision, rest):
    start = MONTHS[1]
    vision.fault(month_name("BTCUSDT", "1s", MONTHS[1]), "missing")  # read from daily files: a day is 86,400 bars
    vision.fault(day_name("BTCUSDT", "1s", start), "us")
    vision.fault(day_name("BTCUSDT", "1s", start + DAY), "gone")
    archive = project(timeframes=["1s"])
    result = archive.backfill(start, start + 2 * DAY)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1s", start, start + 2 * DAY)
    counters = archive.ledger_counters()["ohlcv/BTCUSDT/1s"]
    assert counters["healed_bars"] == 86_400
    assert counters["archive_files_unusable"] >= 1, "once for each backfill chunk of 1s bars that reads the day"
    assert sorted(vision.downloads) == [day_name("BTCUSDT", "1s", start)], "not the 404"


def test_second_bars_of_futures_are_a_config_error(project):
    result = run_cli("validate", str(project(market="usdm", timeframes=["1s"]).path))
    assert result.exit_code == 2 and "1s klines exist in the spot archive only" in result.output
