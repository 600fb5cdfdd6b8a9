"""The ``positioning`` dataset of the ``bybit`` source (``/v5/market/account-ratio``), through the CLI into
DuckDB, against the fake of Bybit's v5 REST API."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from bybit_support import make_project

from etl.testing import Reply, run_cli
from etl.timeframes import DAY, HOUR, MINUTE, floor_ts, iso, parse_time

COLUMNS = ("ts", "long_short_ratio", "long_account", "short_account")
PATH = "/v5/market/account-ratio"


def positioning(bybit, symbols=("BTCUSDT",), timeframes=("1h",), **options):
    return {"plugin": "bybit", "market": "linear", "dataset": "positioning", "symbols": list(symbols),
            "timeframes": list(timeframes), "base_url": bybit.url, "retry_base_delay": 0.01, "timeout": 1.0,
            **options}


def test_two_months_of_hourly_shares_land_with_their_ratio(tmp_path, bybit):
    project = make_project(tmp_path, positioning(bybit, ["BTCUSDT", "ETHUSDT"]))
    start, end = parse_time("2024-01-01"), parse_time("2024-03-01")

    result = project.backfill(start, end)

    assert result.exit_code == 0, result
    for symbol in ("BTCUSDT", "ETHUSDT"):
        stored = project.rows("positioning", symbol, COLUMNS)
        assert len(stored) == (end - start) // HOUR
        assert stored == bybit.expected_positioning(symbol, "1h", start, end)
        asked = [(r.query["period"], int(r.query["startTime"]), int(r.query["endTime"]), r.query["limit"])
                 for r in bybit.requests_to(PATH) if r.query["symbol"] == symbol]
        assert sorted(asked) == [("1h", lo, min(lo + 500 * HOUR, end) - 1, "500")
                                 for lo in range(start, end, 500 * HOUR)], "one page per window of 500 periods"
    assert project.rows("positioning", "BTCUSDT", ("timeframe", "source"))[0] == ("1h", "bybit")
    first = project.rows("positioning", "BTCUSDT", COLUMNS)[0]
    assert first[1] == pytest.approx(first[2] / first[3], rel=1e-15), "long_short_ratio = buyRatio / sellRatio"


def test_inverse_five_minute_periods(tmp_path, bybit):
    project = make_project(tmp_path, positioning(bybit, ["BTCUSD"], ["5m"], market="inverse"))
    start = parse_time("2024-05-01")

    assert project.backfill(start, start + DAY).exit_code == 0
    assert project.rows("positioning", "BTCUSD", COLUMNS) == bybit.expected_positioning(
        "BTCUSD", "5min", start, start + DAY)
    assert {r.query["category"] for r in bybit.requests_to(PATH)} == {"inverse"}


def test_pages_shorter_than_asked_are_followed_by_their_cursor(tmp_path, bybit):
    """A server giving fewer rows than ``limit`` per answer (Bybit may clamp: not documented) is paged through
    ``nextPageCursor`` down to the window's start, newest first, and the rows still land once each."""
    bybit.account_ratio_page = 120
    project = make_project(tmp_path, positioning(bybit, timeframes=["15m"]))
    start, end = parse_time("2024-02-01"), parse_time("2024-02-08")

    assert project.backfill(start, end).exit_code == 0

    assert project.rows("positioning", "BTCUSDT", COLUMNS) == bybit.expected_positioning(
        "BTCUSDT", "15min", start, end)
    cursors = [r.query.get("cursor") for r in bybit.requests_to(PATH)]
    assert len(cursors) == 5 + 2, "pages of 120 over two windows of 500 and 172 periods"
    assert unquote(cursors[1]) == f"lastid=0&lasttime={(start + 380 * 15 * MINUTE) // 1000}", "the oldest row's"


def test_nothing_is_asked_before_bybits_series_begins(tmp_path, bybit):
    project = make_project(tmp_path, positioning(bybit, timeframes=["1d"]))
    start, end = parse_time("2020-01-01"), parse_time("2020-09-01")

    result = project.backfill(start, end)

    assert result.exit_code == 0, result
    stored = project.rows("positioning", "BTCUSDT", COLUMNS)
    assert stored == bybit.expected_positioning("BTCUSDT", "1d", start, end)
    assert stored[0][0] == parse_time("2020-07-20") and len(stored) == 43
    assert min(int(r.query["startTime"]) for r in bybit.requests_to(PATH)) == parse_time("2020-07-20")


def test_a_period_without_short_accounts_has_no_ratio(tmp_path, bybit):
    start = parse_time("2024-01-01")
    bybit.all_long = {start + 30 * MINUTE}
    project = make_project(tmp_path, positioning(bybit, timeframes=["30m"]))

    assert project.backfill(start, start + 2 * HOUR).exit_code == 0

    assert project.rows("positioning", "BTCUSDT", COLUMNS)[1] == (start + 30 * MINUTE, None, 1.0, 0.0)


def test_a_refusal_fails_the_stream_naming_its_symbol(tmp_path, bybit):
    bybit.fail_on(PATH, Reply.json({"retCode": 10001, "retMsg": "Not supported symbols", "result": {},
                                    "retExtInfo": {}, "time": 1726147060461}))
    project = make_project(tmp_path, positioning(bybit, ["BTCUSDT", "ETHUSDT"]))
    start = parse_time("2024-01-01")

    result = project.backfill(start, start + DAY)

    assert result.exit_code == 1, result
    assert "Not supported symbols" in result.output
    failed = [symbol for symbol in ("BTCUSDT", "ETHUSDT") if not project.rows("positioning", symbol, COLUMNS)]
    assert len(failed) == 1 and f"positioning/{failed[0]}/1h" in result.output
    assert len(bybit.requests_to(PATH)) == 2, "a refusal is not retried"


@pytest.mark.parametrize(("options", "message"), [
    ({"market": "spot"}, "needs market 'linear' or 'inverse'"),
    ({"timeframes": ["2h"]}, "account-ratio periods are 5m, 15m, 30m, 1h, 4h, 1d"),
])
def test_what_bybit_does_not_offer_is_a_configuration_error(tmp_path, bybit, options, message):
    project = make_project(tmp_path, positioning(bybit, **options))

    result = project.backfill(parse_time("2024-01-01"), parse_time("2024-01-02"))

    assert result.exit_code == 2, result
    assert message in result.output
    assert not bybit.requests


def test_a_period_still_running_on_bybits_clock_waits_for_the_next_run(tmp_path, bybit, frozen_clock):
    """Bybit serves a period's row from its first instant; it is stored once the period has ended. (The clock
    stands still: a five minutes' period ending between a run and the rows expected of it would add one.)"""
    bybit.clock_offset_ms = -7 * MINUTE  # Bybit's clock behind ours: the period it is in has not ended for it
    now = floor_ts(frozen_clock, "5m")
    project = make_project(tmp_path, positioning(bybit, timeframes=["5m"], start=iso(now - HOUR)))

    first = run_cli("run", str(project.path))

    assert first.exit_code == 0, first
    running = floor_ts(bybit.now_ms(), "5m")
    stored = project.rows("positioning", "BTCUSDT", COLUMNS)
    assert stored == bybit.expected_positioning("BTCUSDT", "5min", now - HOUR, running)
    assert project.ledger_counters()["positioning/BTCUSDT/5m"]["open_bars_deferred"] == 1

    bybit.clock_offset_ms = 0
    assert run_cli("run", str(project.path)).exit_code == 0
    assert project.rows("positioning", "BTCUSDT", COLUMNS) == bybit.expected_positioning(
        "BTCUSDT", "5min", now - HOUR, now)
