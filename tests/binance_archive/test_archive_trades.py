"""Aggregate trades from the archive's daily aggTrades files through the real CLI into DuckDB: the rows equal
the ``binance`` REST source's for the same window (spot and USD-M), and files the archive lacks or gets wrong
are healed from REST aggTrades and counted."""

from __future__ import annotations

import pytest
from archive_support import MONTHS, day_name, log_events

from etl.testing import run_cli
from etl.timeframes import DAY, HOUR, floor_ts, now_ms

START = MONTHS[1] + 3 * DAY
END = START + 3 * DAY
TRADES_A_DAY = 3 * DAY // 10_000


def trades(project, **keys):
    return project(dataset="trades", timeframes=None, **keys)


def test_spot_trades_equal_the_rest_sources_table(project, vision, rest):
    archive = trades(project)
    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    assert archive.trades("BTCUSDT") == rest.expected_trades("BTCUSDT", START, END)
    assert sorted(vision.downloads) == [day_name("BTCUSDT", "aggTrades", START + n * DAY) for n in range(3)]
    assert not rest.requests_to("/api/v3/aggTrades")
    same = trades(project, folder="rest", plugin="binance", base_url=rest.url, rest_url=None, cache_dir=None)
    assert same.backfill(START, END).exit_code == 0
    assert archive.table("trades").equals(same.table("trades")), "same columns, types, values and source name"


@pytest.mark.parametrize("fault", [None, "no_header", "us", "repeated"])
def test_usdm_trades_read_alike_whatever_the_files_habits(project, vision, rest, fault):
    if fault:
        vision.fault(day_name("BTCUSDT", "aggTrades", START + DAY), fault)
    archive = trades(project, market="usdm")
    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    assert archive.trades("BTCUSDT") == rest.expected_trades("BTCUSDT", START, END)
    counters = archive.ledger_counters()["trades/BTCUSDT"]
    assert "healed_rows" not in counters and not rest.requests_to("/fapi/v1/aggTrades")
    assert counters.get("repeated_rows_dropped", 0) == (-(-TRADES_A_DAY // 10) if fault == "repeated" else 0)


@pytest.mark.parametrize("market,fault", [("spot", "bad_checksum"), ("spot", "gone"), ("usdm", "truncated"),
                                          ("usdm", "unreadable"), ("spot", "header"), ("spot", "us")])
def test_a_bad_day_is_healed_from_rest_aggtrades_and_counted(project, vision, rest, market, fault):
    bad = day_name("BTCUSDT", "aggTrades", START + DAY)
    vision.fault(bad, fault)
    archive = trades(project, market=market)
    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    assert archive.trades("BTCUSDT") == rest.expected_trades("BTCUSDT", START, END)
    counters = archive.ledger_counters()["trades/BTCUSDT"]
    if fault in ("header", "us"):  # habits of the other market's files, read alike
        assert "healed_rows" not in counters
        return
    assert counters["healed_rows"] == TRADES_A_DAY and counters["archive_files_unusable"] == 1
    assert f"healed rows: {TRADES_A_DAY:,}" in result.summary
    [warning] = log_events(result, "binance archive file unusable")
    assert warning["url"].endswith(bad)
    pages = rest.requests_to("/api/v3/aggTrades" if market == "spot" else "/fapi/v1/aggTrades")
    assert int(pages[0].query["startTime"]) == START + DAY and len(pages) >= TRADES_A_DAY // 1000
    if fault == "bad_checksum":
        assert vision.downloads[bad] == 2, "a mismatch is downloaded once more before it is healed"


def test_a_day_missing_from_the_archive_is_healed(project, vision, rest):
    vision.fault(day_name("ETHUSDT", "aggTrades", START), "missing")
    archive = trades(project, symbols=["ETHUSDT"])
    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    assert archive.trades("ETHUSDT") == rest.expected_trades("ETHUSDT", START, END)
    assert archive.ledger_counters()["trades/ETHUSDT"]["healed_rows"] == TRADES_A_DAY
    [warning] = log_events(result, "binance archive file missing, healed from REST")
    assert warning["url"].endswith(day_name("ETHUSDT", "aggTrades", START)) and warning["rows"] == TRADES_A_DAY


def test_a_window_inside_days_keeps_only_its_trades_and_today_comes_from_rest(project, vision, rest):
    today = floor_ts(now_ms(), "1d")
    start, end = today - DAY + 5 * HOUR + 123, floor_ts(now_ms(), "1h")
    archive = trades(project)
    result = archive.backfill(start, end)

    assert result.exit_code == 0, result
    assert archive.trades("BTCUSDT") == rest.expected_trades("BTCUSDT", start, end)
    recent = len(rest.expected_trades("BTCUSDT", today, end))
    assert archive.ledger_counters()["trades/BTCUSDT"].get("recent_rows", 0) == recent


def test_dry_run_lists_the_daily_files(project, vision, rest):
    result = trades(project).backfill(START, END, "--dry-run")

    assert result.exit_code == 0, result
    listed = [line.split()[0].rsplit("/", 1)[-1] for line in result.stdout.splitlines()
              if line.strip().startswith("http")]
    assert listed == [day_name("BTCUSDT", "aggTrades", START + n * DAY) for n in range(3)]
    assert not vision.downloads and not rest.requests


def test_an_unknown_symbol_names_the_archive_folder(project, vision, rest):
    result = trades(project, symbols=["NOPEUSDT"]).backfill(START, END)

    assert result.exit_code == 1
    assert "no aggTrades for 'NOPEUSDT'" in result.output and "data/spot/monthly/aggTrades/NOPEUSDT/" in result.output


def test_trades_validate_without_the_network(project, vision, rest):
    result = run_cli("validate", str(trades(project, market="usdm").path))
    assert result.exit_code == 0, result
    assert not vision.requests and not rest.requests
