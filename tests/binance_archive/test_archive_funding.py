"""Funding rates from the archive's monthly fundingRate files: the settlements and rates equal the ``binance``
REST source's (the archive has no mark price), a missing month and the months not published yet come from
REST fundingRate."""

from __future__ import annotations

from archive_support import MONTHS, log_events, month_name

from etl.testing import run_cli
from etl.timeframes import floor_ts, next_bar, now_ms

END = next_bar(MONTHS[-1], "1M")


def funding(project, **keys):
    return project(dataset="funding", timeframes=None, market="usdm", **keys)


def settlements(rest, symbol, start, end):
    return [(ts, rate) for ts, rate, _ in rest.expected_funding(symbol, start, end)]


def test_closed_months_equal_the_rest_sources_settlements(project, vision, rest):
    archive = funding(project)
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT", ("ts", "funding_rate"), "funding") == settlements(rest, "BTCUSDT", MONTHS[0], END)
    assert sorted(vision.downloads) == [month_name("BTCUSDT", "fundingRate", month) for month in MONTHS]
    assert not rest.requests_to("/fapi/v1/fundingRate")
    same = funding(project, folder="rest", plugin="binance", base_url=rest.url, rest_url=None, cache_dir=None)
    assert same.backfill(MONTHS[0], END).exit_code == 0
    assert archive.table("funding").drop("mark_price", strict=False).equals(
        same.table("funding").drop("mark_price")), "same keys, rates and source name; no mark price in the archive"


def test_a_missing_month_is_healed_and_this_month_is_recent(project, vision, rest):
    vision.fault(month_name("BTCUSDT", "fundingRate", MONTHS[1]), "missing")
    archive = funding(project)
    end = floor_ts(now_ms(), "1h")
    result = archive.backfill(MONTHS[0], end)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT", ("ts", "funding_rate"), "funding") == settlements(rest, "BTCUSDT", MONTHS[0], end)
    counters = archive.ledger_counters()["funding/BTCUSDT"]
    assert counters["healed_rows"] == len(settlements(rest, "BTCUSDT", MONTHS[1], MONTHS[2]))
    assert counters["recent_rows"] == len(settlements(rest, "BTCUSDT", END, end))
    [warning] = log_events(result, "binance archive file missing, healed from REST")
    assert warning["url"].endswith(month_name("BTCUSDT", "fundingRate", MONTHS[1]))


def test_repeated_and_microsecond_rows_read_alike(project, vision, rest):
    vision.fault(month_name("BTCUSDT", "fundingRate", MONTHS[0]), "repeated")
    vision.fault(month_name("BTCUSDT", "fundingRate", MONTHS[1]), "us")
    vision.fault(month_name("BTCUSDT", "fundingRate", MONTHS[2]), "bad_checksum")
    archive = funding(project)
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows("BTCUSDT", ("ts", "funding_rate"), "funding") == settlements(rest, "BTCUSDT", MONTHS[0], END)
    counters = archive.ledger_counters()["funding/BTCUSDT"]
    assert counters["repeated_rows_dropped"] == -(-len(settlements(rest, "BTCUSDT", MONTHS[0], MONTHS[1])) // 10)
    assert counters["archive_files_unusable"] == 1
    assert counters["healed_rows"] == len(settlements(rest, "BTCUSDT", MONTHS[2], END))


def test_spot_funding_is_a_config_error(project):
    result = run_cli("validate", str(project(dataset="funding", timeframes=None).path))
    assert result.exit_code == 2 and "'funding' needs a futures market" in result.output

