"""COIN-M futures (``futures/cm``, symbols like BTCUSD_PERP): klines, trades and funding from their archive
files, equal to what Binance serves for them. The ``binance`` source reads no COIN-M REST API (``dapi``), so
what the archive lacks there is a recorded gap with a warning that says so, and REST is never called."""

from __future__ import annotations

import pytest
from archive_support import MONTHS, day_names, log_events, month_name

from etl.timeframes import DAY, next_bar

END = next_bar(MONTHS[-1], "1M")
SYMBOL = "BTCUSD_PERP"


def coinm(project, **keys):
    return project(market="coinm", symbols=[SYMBOL], **keys)


def test_klines_trades_and_funding_land_from_the_coinm_archive(project, vision, rest):
    klines = coinm(project, folder="klines")
    assert klines.backfill(MONTHS[0], END).exit_code == 0
    assert klines.rows(SYMBOL) == rest.expected_klines(SYMBOL, "1h", MONTHS[0], END)

    start = MONTHS[1]
    trades = coinm(project, folder="trades", dataset="trades", timeframes=None)
    assert trades.backfill(start, start + 2 * DAY).exit_code == 0
    assert trades.trades(SYMBOL) == rest.expected_trades(SYMBOL, start, start + 2 * DAY)

    funding = coinm(project, folder="funding", dataset="funding", timeframes=None)
    assert funding.backfill(MONTHS[0], END).exit_code == 0
    expected = [(ts, rate) for ts, rate, _ in rest.expected_funding(SYMBOL, MONTHS[0], END)]
    assert funding.rows(SYMBOL, ("ts", "funding_rate"), "funding") == expected

    assert all("/futures/cm/" in request.path for request in vision.requests if request.path != "/")
    assert not rest.requests


@pytest.mark.parametrize("fault", ["missing", "bad_checksum"])
def test_what_the_coinm_archive_lacks_is_a_gap_named_in_a_warning(project, vision, rest, fault):
    bad = month_name(SYMBOL, "1h", MONTHS[1])
    for name in [bad, *(day_names(SYMBOL, "1h", MONTHS[1]) if fault == "missing" else [])]:
        vision.fault(name, fault)
    archive = coinm(project)
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    expected = [row for row in rest.expected_klines(SYMBOL, "1h", MONTHS[0], END)
                if not MONTHS[1] <= row[0] < MONTHS[2]]
    assert archive.rows(SYMBOL) == expected
    counters = archive.ledger_counters()[f"ohlcv/{SYMBOL}/1h"]
    assert "healed_bars" not in counters and not rest.requests
    if fault == "missing":
        warnings = log_events(result, "binance archive file missing, left as a gap")
        assert warnings and {event["why"] for event in warnings} == {"the binance source reads no COIN-M REST API"}
        assert counters["archive_files_missing"] == len(warnings)
    else:
        [warning] = log_events(result, "binance archive file unusable")
        assert warning["url"].endswith(bad) and warning["healed_from_rest"] is False
        assert counters["archive_files_unusable"] == 1
