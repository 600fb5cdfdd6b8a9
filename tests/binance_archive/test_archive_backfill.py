"""The binance_archive source through the real CLI into DuckDB, against the fake archive and the fake REST API:
the rows that land equal the REST oracle whatever fault the archive serves, and healed spans are counted."""

from __future__ import annotations

import os
import sys
import time

import pytest
from archive_support import FIRST, MONTHS, day_names, log_events, month_name

from etl.testing import Reply, run_cli
from etl.timeframes import HOUR, floor_ts, from_ms, next_bar, now_ms

END = next_bar(MONTHS[-1], "1M")  # three closed months, read from three monthly files
BARS = [(next_bar(month, "1M") - month) // HOUR for month in MONTHS]


def test_closed_months_land_exactly_the_rest_sources_rows(project, vision, rest, tmp_path):
    archive = project()
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    assert sorted(vision.downloads) == [month_name("BTCUSDT", "1h", month) for month in MONTHS]
    assert not rest.requests_to("/api/v3/klines"), "nothing to heal, nothing asked of the REST API"
    same = project("rest", plugin="binance", base_url=rest.url, rest_url=None, cache_dir=None)
    assert same.backfill(MONTHS[0], END).exit_code == 0
    assert archive.table().equals(same.table()), "same columns, types, values and source name as the REST source"
    assert set(archive.table()["source"]) == {"binance"}


def test_the_current_month_comes_from_daily_files_and_today_from_rest(project, vision, rest):
    archive = project()
    end = floor_ts(now_ms(), "1h")
    result = archive.backfill(MONTHS[-1], end)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[-1], end)
    this_month = next_bar(MONTHS[-1], "1M")
    days = (floor_ts(now_ms(), "1d") - this_month) // (24 * HOUR)
    assert len([name for name in vision.downloads if name.count("-") == 4]) == days, "one daily file per past day"
    today = (end - floor_ts(now_ms(), "1d")) // HOUR
    assert archive.ledger_counters()["ohlcv/BTCUSDT/1h"].get("recent_bars", 0) == today


@pytest.mark.parametrize("fault", ["bad_checksum", "truncated", "unreadable", "gone", "no_checksum"])
def test_an_unusable_file_is_healed_from_rest_and_counted(project, vision, rest, fault):
    bad = month_name("BTCUSDT", "1h", MONTHS[1])
    vision.fault(bad, fault)
    archive = project()
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    counters = archive.ledger_counters()["ohlcv/BTCUSDT/1h"]
    assert counters["healed_bars"] == BARS[1] and counters["archive_files_unusable"] == 1
    assert f"healed bars: {BARS[1]}" in result.summary
    [warning] = log_events(result, "binance archive file unusable")
    assert warning["url"].endswith(bad)
    pages = rest.requests_to("/api/v3/klines")
    assert [int(page.query["startTime"]) for page in pages] == [MONTHS[1]], "only the bad month, one page"


def test_a_checksum_mismatch_is_downloaded_again_once(project, vision, rest):
    flaky = month_name("BTCUSDT", "1h", MONTHS[1])
    vision.fault(flaky, "bad_once")
    archive = project()
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    assert vision.downloads[flaky] == 2
    assert len(log_events(result, "binance archive checksum mismatch")) == 1
    assert "healed_bars" not in archive.ledger_counters()["ohlcv/BTCUSDT/1h"]


def test_a_file_failing_twice_is_downloaded_twice_then_healed(project, vision, rest):
    bad = month_name("BTCUSDT", "1h", MONTHS[1])
    vision.fault(bad, "bad_checksum")
    result = project().backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert vision.downloads[bad] == 2
    assert [event["attempt"] for event in log_events(result, "binance archive checksum mismatch")] == [1, 2]


def test_a_month_missing_everywhere_is_healed(project, vision, rest):
    for name in [month_name("BTCUSDT", "1h", MONTHS[1]), *day_names("BTCUSDT", "1h", MONTHS[1])]:
        vision.fault(name, "missing")
    archive = project()
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    counters = archive.ledger_counters()["ohlcv/BTCUSDT/1h"]
    assert counters["healed_bars"] == BARS[1] and "archive_files_unusable" not in counters
    warnings = log_events(result, "binance archive file missing, healed from REST")
    assert [event["url"].rsplit("/", 1)[-1] for event in warnings] == day_names("BTCUSDT", "1h", MONTHS[1])


def test_a_month_without_its_monthly_file_is_read_from_daily_files(project, vision, rest):
    vision.fault(month_name("BTCUSDT", "1h", MONTHS[1]), "missing")
    archive = project()
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    assert sorted(name for name in vision.downloads if name.count("-") == 4) == day_names("BTCUSDT", "1h", MONTHS[1])
    assert not rest.requests_to("/api/v3/klines")


@pytest.mark.parametrize("market,fault", [("spot", "header"), ("spot", "us"), ("usdm", "no_header"),
                                          ("usdm", "us")])
def test_header_rows_and_microseconds_read_alike(project, vision, rest, market, fault):
    vision.fault(month_name("BTCUSDT", "1h", MONTHS[1]), fault)
    archive = project(market=market)
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    assert "healed_bars" not in archive.ledger_counters()["ohlcv/BTCUSDT/1h"]


def test_repeated_rows_are_dropped_and_counted(project, vision, rest):
    vision.fault(month_name("BTCUSDT", "1h", MONTHS[1]), "repeated")
    archive = project()
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    assert archive.ledger_counters()["ohlcv/BTCUSDT/1h"]["repeated_rows_dropped"] == -(-BARS[1] // 10)


def test_listing_pages_are_followed(project, vision, rest):
    vision.page_size = 2  # a zip and its checksum per page
    archive = project()
    assert archive.backfill(MONTHS[0], END).exit_code == 0
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    markers = [request.query.get("marker", "") for request in vision.requests if request.path == "/"]
    assert len(markers) >= 4 and markers[0] == "" and all(markers[1:])


def test_a_rerun_reads_the_cache_and_downloads_nothing(project, vision, rest):
    assert project("first").backfill(MONTHS[0], END).exit_code == 0
    downloaded = dict(vision.downloads)
    again = project("second")
    result = again.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert dict(vision.downloads) == downloaded
    assert again.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)


def test_a_corrupted_cached_file_is_downloaded_again(project, vision, rest, tmp_path):
    assert project("first").backfill(MONTHS[0], END).exit_code == 0
    name = month_name("BTCUSDT", "1h", MONTHS[1])
    [cached] = (tmp_path / "cache").rglob(name)
    cached.write_bytes(cached.read_bytes()[:-10])
    again = project("second")
    result = again.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert vision.downloads[name] == 2
    assert again.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)


def test_the_cache_keeps_under_its_cap(project, vision, rest, tmp_path):
    size = len(vision.zip_bytes(f"data/spot/monthly/klines/BTCUSDT/1h/{month_name('BTCUSDT', '1h', MONTHS[0])}"))
    archive = project(cache_max_mb=2.5 * size / 2**20, downloads=1)  # one at a time: a known order
    assert archive.backfill(MONTHS[0], END).exit_code == 0

    cached = sorted(path.name for path in (tmp_path / "cache").rglob("*.zip"))
    assert cached == [month_name("BTCUSDT", "1h", month) for month in MONTHS[1:]], "the oldest read went first"
    assert sum(path.stat().st_size for path in (tmp_path / "cache").rglob("*") if path.is_file()) <= 2.5 * size


def test_dry_run_lists_files_and_bytes_and_downloads_nothing(project, vision, rest):
    vision.fault(month_name("BTCUSDT", "1h", MONTHS[1]), "missing")
    for name in day_names("BTCUSDT", "1h", MONTHS[1]):
        vision.fault(name, "missing")
    archive = project()
    result = archive.backfill(MONTHS[0], END, "--dry-run")

    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    sizes = {month: len(vision.zip_bytes(f"data/spot/monthly/klines/BTCUSDT/1h/{month_name('BTCUSDT', '1h', month)}"))
             for month in (MONTHS[0], MONTHS[2])}
    listed = [line for line in lines if line.strip().startswith("http")]
    assert [line.split()[0].rsplit("/", 1)[-1] for line in listed] == [
        month_name("BTCUSDT", "1h", MONTHS[0]), month_name("BTCUSDT", "1h", MONTHS[2])]
    assert sum(1 for line in lines if "missing from the archive" in line) == len(day_names("BTCUSDT", "1h", MONTHS[1]))
    assert f"({sum(sizes.values()):,} bytes)" in lines[-1]
    assert not vision.downloads and not rest.requests


def test_an_unknown_symbol_fails_only_its_stream(project, vision, rest):
    archive = project(symbols=["BTCUSDT", "NOPEUSDT"])
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 1
    assert "FAILED history ohlcv/NOPEUSDT/1h" in result.output and "'NOPEUSDT'" in result.output
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)


def test_validate_needs_no_network(project, vision, rest):
    archive = project(symbols=["BTCUSDT", "ETHUSDT"], market="usdm", downloads=2)
    result = run_cli("validate", str(archive.path))

    assert result.exit_code == 0, result
    assert not vision.requests and not rest.requests


def test_lower_case_symbols_are_a_config_error(project):
    result = run_cli("validate", str(project(symbols=["btcusdt"]).path))
    assert result.exit_code == 2 and "'btcusdt'" in result.output


def test_the_archive_begins_with_its_first_file(project, vision, rest):
    archive = project()
    result = archive.backfill(FIRST - 90 * 24 * HOUR, MONTHS[0])

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", FIRST, MONTHS[0])
    assert not rest.requests_to("/api/v3/klines"), "before the symbol's first file there is nothing to heal"


def test_a_download_a_killed_run_left_is_removed_once_stale(project, vision, rest, tmp_path):
    folder = tmp_path / "cache" / "binance-vision" / "data"
    folder.mkdir(parents=True)
    stale, fresh = folder / ".BTCUSDT-1h-2020-01.zip.1.2.part", folder / ".BTCUSDT-1h-2020-02.zip.1.3.part"
    for path in (stale, fresh):
        path.write_bytes(b"half a zip")
    os.utime(stale, (time.time() - 2 * 3600, time.time() - 2 * 3600))

    assert project().backfill(MONTHS[0], END).exit_code == 0
    assert not stale.exists() and fresh.exists(), "a fresh one may be another process's download in progress"


def test_downloads_stay_within_their_bound(project, vision, rest):
    vision.delay = 0.2
    archive = project(symbols=["BTCUSDT", "ETHUSDT"], downloads=2, timeframes=["1h", "4h"])
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert vision.most_in_flight == 2, "four streams, twelve files, two downloads at a time"
    for symbol in ("BTCUSDT", "ETHUSDT"):
        expected = [(timeframe, row[0], row[4]) for timeframe in ("1h", "4h")
                    for row in rest.expected_klines(symbol, timeframe, MONTHS[0], END)]
        assert sorted(archive.rows(symbol, ("timeframe", "ts", "close"))) == expected


def test_broken_transfers_are_retried(project, vision, rest):
    vision.zip_faults.extend([Reply.reset(), Reply.truncated(Reply(200, b"PK" * 500)), Reply.text("busy", 503)])
    archive = project()
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    assert len(log_events(result, "retrying")) == 3
    assert not vision.zip_faults and "healed_bars" not in archive.ledger_counters()["ohlcv/BTCUSDT/1h"]


def test_bars_missing_inside_a_file_are_recorded_gaps(project, vision, rest):
    hole = set(range(MONTHS[1] + 5 * HOUR, MONTHS[1] + 8 * HOUR, HOUR))  # three hours without a trade
    vision.missing_bars = rest.missing_bars = hole
    archive = project()
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    expected = [row for row in rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END) if row[0] not in hole]
    assert archive.rows("BTCUSDT") == expected
    assert "missing bars: 3" in result.summary and "healed" not in result.summary


@pytest.mark.parametrize("timeframe", ["1d", "1w", "1M"])
def test_daily_weekly_and_monthly_bars_come_from_their_files(project, vision, rest, timeframe):
    archive = project(timeframes=[timeframe])
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", timeframe, MONTHS[0], END)
    interval = "1mo" if timeframe == "1M" else timeframe
    assert sorted(vision.downloads) == [month_name("BTCUSDT", interval, month) for month in MONTHS]


def test_yesterday_not_published_yet_comes_from_rest_without_a_warning(project, vision, rest):
    today = floor_ts(now_ms(), "1d")
    yesterday = today - 24 * HOUR
    if today == floor_ts(today, "1M"):
        pytest.skip("on the 1st, yesterday belongs to a closed month")
    vision.fault(f"BTCUSDT-1h-{from_ms(yesterday):%Y-%m-%d}.zip", "missing")
    archive = project()
    end = floor_ts(now_ms(), "1h")
    result = archive.backfill(yesterday, end)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", yesterday, end)
    counters = archive.ledger_counters()["ohlcv/BTCUSDT/1h"]
    assert counters["recent_bars"] == 24 + (end - today) // HOUR and "healed_bars" not in counters
    assert not log_events(result, "binance archive file missing, healed from REST")


def test_zips_read_alike_without_zlib_ng(project, vision, rest, monkeypatch):
    monkeypatch.setitem(sys.modules, "zlib_ng", None)  # not installed: zipfile inflates with zlib
    vision.fault(month_name("BTCUSDT", "1h", MONTHS[1]), "unreadable")
    archive = project()
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT") == rest.expected_klines("BTCUSDT", "1h", MONTHS[0], END)
    assert archive.ledger_counters()["ohlcv/BTCUSDT/1h"]["healed_bars"] == BARS[1]


def test_dry_run_after_a_backfill_has_nothing_to_download(project, vision, rest):
    archive = project()
    assert archive.backfill(MONTHS[0], END).exit_code == 0
    result = archive.backfill(MONTHS[0], END, "--dry-run")

    assert result.exit_code == 0, result
    listed = [line for line in result.stdout.splitlines() if line.strip().startswith("http")]
    assert len(listed) == 3 and all(line.endswith("(cached)") for line in listed)
    assert "to download: 0 files, 0 B (0 bytes)" in result.stdout


def test_without_healing_what_the_archive_lacks_is_a_gap_and_rest_is_never_called(project, vision, rest):
    vision.fault(month_name("BTCUSDT", "1h", MONTHS[0]), "bad_checksum")
    for name in [month_name("BTCUSDT", "1h", MONTHS[1]), *day_names("BTCUSDT", "1h", MONTHS[1])]:
        vision.fault(name, "missing")
    archive = project(heal=False)
    end = floor_ts(now_ms(), "1h")
    result = archive.backfill(MONTHS[0], end)

    assert result.exit_code == 0, result
    published = floor_ts(now_ms(), "1d") - 24 * HOUR  # yesterday's file is the newest (the fake publishes at once)
    expected = rest.expected_klines("BTCUSDT", "1h", MONTHS[2], published + 24 * HOUR)
    assert archive.rows("BTCUSDT") == expected
    assert not rest.requests
    counters = archive.ledger_counters()["ohlcv/BTCUSDT/1h"]
    assert counters["archive_files_unusable"] == 1
    assert counters["archive_files_missing"] == len(day_names("BTCUSDT", "1h", MONTHS[1]))
    assert [event["healed_from_rest"] for event in log_events(result, "binance archive file unusable")] == [False]
