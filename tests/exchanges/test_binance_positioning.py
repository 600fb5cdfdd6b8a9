"""The binance source's ``positioning`` dataset (USD-M), through the CLI into DuckDB, against the local fake of
Binance's four ``/futures/data`` positioning endpoints."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, ClassVar

import pytest

from etl.testing import SourceConformance
from etl.timeframes import DAY, HOUR, MINUTE, floor_ts, iso, now_ms

COLUMNS = ("ts", "long_short_ratio", "long_account", "short_account", "top_long_short_account_ratio",
           "top_long_short_position_ratio", "taker_buy_volume", "taker_sell_volume", "taker_buy_sell_ratio")
ENDPOINTS = ("globalLongShortAccountRatio", "topLongShortAccountRatio", "topLongShortPositionRatio",
             "takerlongshortRatio")


def positioning(binance, fast, start: int, timeframe: str = "1h") -> dict[str, Any]:
    return {"plugin": "binance", "market": "usdm", "dataset": "positioning", "symbols": ["BTCUSDT"],
            "timeframes": [timeframe], "start": iso(start), "base_url": binance.url, **fast}


def ledger(market) -> tuple[dict[str, Any], list[tuple[str, str, str, int]]]:
    """The last run's counters of the one stream, and every recorded gap (stream, start, end, bars)."""
    with sqlite3.connect(market.path.parent / ".etl" / "ledger.db") as connection:
        counters = connection.execute("SELECT counters FROM stream_runs ORDER BY rowid DESC LIMIT 1").fetchone()[0]
        gaps = connection.execute('SELECT stream, start, "end", bars FROM gaps ORDER BY start').fetchall()
    return json.loads(counters), gaps


@pytest.mark.parametrize("clock_offset", [0, 10 * MINUTE], ids=["same-clock", "binance-10-minutes-ahead"])
def test_thirty_days_of_samples_land_joined_from_the_four_endpoints(binance, pipeline, fast, log_events, clock_offset):
    binance.clock_offset_ms = clock_offset  # its 30 days start 10 minutes later: an older startTime is HTTP 400
    asked = floor_ts(now_ms() - 45 * DAY, "1d")
    market = pipeline(positioning(binance, fast, asked))

    result = market.run()

    assert result.exit_code == 0, result
    stored = market.rows("positioning", "BTCUSDT", COLUMNS)
    first, last = stored[0][0], stored[-1][0]
    assert first <= binance.now_ms() - 30 * DAY + HOUR and last >= floor_ts(now_ms(), "1h") - HOUR
    assert stored == binance.expected_positioning("BTCUSDT", "1h", first, last + 1)
    assert len(stored) > 700 and all(None not in row for row in stored)
    assert market.columns("positioning")[:7] == ["source", "symbol", "timeframe", "ts", "long_short_ratio",
                                                 "long_account", "short_account"]
    for endpoint in ENDPOINTS:
        requests = binance.requests_to(f"/futures/data/{endpoint}")
        assert len({r.query["startTime"] for r in requests}) == 2, "720 hourly samples: two windows of 500 periods"
        assert all(r.query["period"] == "1h" and r.query["limit"] == "500" for r in requests)
        assert min(int(r.query["startTime"]) for r in requests) >= binance.now_ms() - 30 * DAY - MINUTE
    [warning] = log_events(result.stderr, "positioning history starts later")
    assert warning["asked"] == iso(asked) and warning["reason"] == "Binance keeps the last 30 days only"
    counters, gaps = ledger(market)
    lost = -(-(binance.now_ms() - 30 * DAY + MINUTE - asked) // HOUR)
    assert counters["periods_beyond_history"] in (lost - 1, lost), "the hours Binance no longer has, counted"
    assert not gaps
    [use] = log_events(result.stderr, "rate limit use")
    assert use["open_interest"] == binance.open_interest_window.total >= 8, "one count for every /futures/data call"


@pytest.mark.parametrize(("string_timestamps", "symbol_in_rows"), [(True, True), (False, False), (True, False)],
                         ids=["doc-strings", "live-ints-without-symbol", "strings-without-symbol"])
def test_both_timestamp_forms_and_rows_without_symbol_land_the_same(binance, pipeline, fast, string_timestamps,
                                                                    symbol_in_rows):
    binance.string_timestamps, binance.symbol_in_rows = string_timestamps, symbol_in_rows
    market = pipeline(positioning(binance, fast, floor_ts(now_ms() - 2 * DAY, "1d"), "5m"))

    result = market.run()

    assert result.exit_code == 0, result
    stored = market.rows("positioning", "BTCUSDT", COLUMNS)
    assert len(stored) >= 2 * 24 * 12
    assert stored == binance.expected_positioning("BTCUSDT", "5m", stored[0][0], stored[-1][0] + 1)
    assert "periods_beyond_history" not in ledger(market)[0]


def test_a_sample_an_extra_endpoint_lacks_has_nulls_and_one_the_global_ratio_lacks_is_a_gap(binance, pipeline, fast):
    start = floor_ts(now_ms() - 2 * DAY, "1d")
    taker_hole, top_hole, global_hole = start + 10 * HOUR, start + 11 * HOUR, start + 20 * HOUR
    binance.positioning_gaps = {"takerlongshortRatio": {taker_hole}, "topLongShortPositionRatio": {top_hole},
                                "globalLongShortAccountRatio": {global_hole}}
    market = pipeline(positioning(binance, fast, start))

    result = market.run()

    assert result.exit_code == 0, result
    stored = {row[0]: row for row in market.rows("positioning", "BTCUSDT", COLUMNS)}
    assert stored[taker_hole][6:] == (None, None, None) and None not in stored[taker_hole][:6]
    assert stored[top_hole][5] is None and None not in stored[top_hole][:5] + stored[top_hole][6:]
    assert global_hole not in stored and global_hole + HOUR in stored
    assert list(stored.values()) == binance.expected_positioning("BTCUSDT", "1h", start, max(stored) + 1)
    counters, gaps = ledger(market)
    assert counters["samples_without_global_ratio"] == 1
    assert gaps == [("positioning/BTCUSDT/1h", iso(global_hole), iso(global_hole + HOUR), 1)]


@pytest.mark.parametrize(("keys", "said"), [
    ({"market": "spot"}, "binance dataset 'positioning' needs market = 'usdm' (it is 'spot')"),
    ({"timeframes": ["8h"]}, "Invalid timeframe '8h' for binance positioning; Binance offers: 5m, 15m, 30m, 1h, 2h, "
                             "4h, 6h, 12h, 1d"),
])
def test_a_market_or_period_binance_has_no_positioning_for_is_a_configuration_error(binance, pipeline, fast, keys,
                                                                                     said):
    market = pipeline({**positioning(binance, fast, now_ms() - DAY), **keys})

    result = market.run()

    assert result.exit_code == 2
    assert said in result.stderr
    assert not binance.requests


class TestBinancePositioningConforms(SourceConformance):
    plugin, dataset = "binance", "positioning"
    symbols, timeframes = ("BTCUSDT",), ("15m",)
    start, end = iso(floor_ts(now_ms(), "1h") - 3 * DAY), iso(floor_ts(now_ms(), "1h") - 2 * HOUR)
    unknown_symbol = "NOPEUSDT"
    options: ClassVar[dict[str, Any]] = {"market": "usdm", "retry_base_delay": 0.01, "timeout": 2.0}

    @pytest.fixture(scope="class")
    def exchange(self):
        from fixtures.fake_binance import FakeBinance

        with FakeBinance() as fake:
            yield fake

    @pytest.fixture
    def source_server(self, exchange):
        return exchange.server

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return dict(self.options)
