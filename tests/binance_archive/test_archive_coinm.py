"""COIN-M futures (``futures/cm``, symbols like BTCUSD_PERP): klines, trades and funding from their archive
files, equal to what Binance serves for them; what the archive lacks or gets wrong is healed from COIN-M's REST
API (``dapi``, through the ``binance`` source) and counted, as for USD-M."""

from __future__ import annotations

import pytest
from archive_support import MONTHS, day_name, day_names, log_events, month_name

from etl.timeframes import DAY, HOUR, next_bar

END = next_bar(MONTHS[-1], "1M")
SYMBOL = "BTCUSD_PERP"
BARS = (next_bar(MONTHS[1], "1M") - MONTHS[1]) // HOUR


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


def test_coinm_archive_rows_equal_the_coinm_rest_sources(project, vision, rest):
    """Same columns, types, values and source name as the ``binance`` source reading ``dapi``."""
    archive = coinm(project)
    assert archive.backfill(MONTHS[0], END).exit_code == 0
    same = coinm(project, folder="rest", plugin="binance", base_url=rest.url, rest_url=None, cache_dir=None)
    assert same.backfill(MONTHS[0], END).exit_code == 0
    assert archive.table().equals(same.table())


@pytest.mark.parametrize("fault", ["missing", "bad_checksum"])
def test_what_the_coinm_archive_lacks_is_healed_from_dapi(project, vision, rest, fault):
    bad = month_name(SYMBOL, "1h", MONTHS[1])
    for name in [bad, *(day_names(SYMBOL, "1h", MONTHS[1]) if fault == "missing" else [])]:
        vision.fault(name, fault)
    archive = coinm(project)
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    assert archive.rows(SYMBOL) == rest.expected_klines(SYMBOL, "1h", MONTHS[0], END)
    counters = archive.ledger_counters()[f"ohlcv/{SYMBOL}/1h"]
    assert counters["healed_bars"] == BARS
    pages = rest.requests_to("/dapi/v1/klines")
    assert pages and all(page.query["symbol"] == SYMBOL for page in pages)
    assert MONTHS[1] <= min(int(page.query["startTime"]) for page in pages)
    assert max(int(page.query["endTime"]) for page in pages) == next_bar(MONTHS[1], "1M") - 1, "the bad month only"
    assert not rest.requests_to("/fapi/v1/klines") and not rest.requests_to("/api/v3/klines")
    if fault == "missing":
        warnings = log_events(result, "binance archive file missing, healed from REST")
        assert [event["url"].rsplit("/", 1)[-1] for event in warnings] == day_names(SYMBOL, "1h", MONTHS[1])
        assert "archive_files_missing" not in counters
    else:
        [warning] = log_events(result, "binance archive file unusable")
        assert warning["url"].endswith(bad) and warning["healed_from_rest"] is True
        assert counters["archive_files_unusable"] == 1


def test_a_bad_coinm_trades_day_and_funding_month_are_healed(project, vision, rest):
    start = MONTHS[1]
    vision.fault(day_name(SYMBOL, "aggTrades", start + DAY), "unreadable")
    trades = coinm(project, folder="trades", dataset="trades", timeframes=None)
    assert trades.backfill(start, start + 2 * DAY).exit_code == 0
    assert trades.trades(SYMBOL) == rest.expected_trades(SYMBOL, start, start + 2 * DAY)
    healed = len(rest.expected_trades(SYMBOL, start + DAY, start + 2 * DAY))
    assert trades.ledger_counters()[f"trades/{SYMBOL}"]["healed_rows"] == healed
    assert rest.requests_to("/dapi/v1/aggTrades")

    vision.fault(month_name(SYMBOL, "fundingRate", MONTHS[1]), "missing")
    funding = coinm(project, folder="funding", dataset="funding", timeframes=None)
    assert funding.backfill(MONTHS[0], END).exit_code == 0
    expected = [(ts, rate) for ts, rate, _ in rest.expected_funding(SYMBOL, MONTHS[0], END)]
    assert funding.rows(SYMBOL, ("ts", "funding_rate"), "funding") == expected
    month = rest.expected_funding(SYMBOL, MONTHS[1], MONTHS[2])
    assert funding.ledger_counters()[f"funding/{SYMBOL}"]["healed_rows"] == len(month)
    assert rest.requests_to("/dapi/v1/fundingRate") and not rest.requests_to("/fapi/v1/fundingRate")


def test_without_healing_the_coinm_gap_stays_and_rest_is_never_called(project, vision, rest):
    for name in [month_name(SYMBOL, "1h", MONTHS[1]), *day_names(SYMBOL, "1h", MONTHS[1])]:
        vision.fault(name, "missing")
    archive = coinm(project, heal=False)
    result = archive.backfill(MONTHS[0], END)

    assert result.exit_code == 0, result
    expected = [row for row in rest.expected_klines(SYMBOL, "1h", MONTHS[0], END)
                if not MONTHS[1] <= row[0] < MONTHS[2]]
    assert archive.rows(SYMBOL) == expected
    warnings = log_events(result, "binance archive file missing, left as a gap")
    assert warnings and {event["why"] for event in warnings} == {"heal = false"}
    assert not rest.requests
