"""COIN-M futures (``market = "coinm"``, ``dapi``) through the binance source, against the fake: klines, aggregate
trades and funding land exactly; the pages respect COIN-M's kline rules and weigh what its documented weights say."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from etl.timeframes import DAY, HOUR, parse_time
from fixtures.fake_binance import FakeBinance

KLINE_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume",
                 "taker_buy_quote_volume")
SYMBOL = "BTCUSD_PERP"


@pytest.fixture
def coinm() -> Iterator[FakeBinance]:
    """COIN-M with ten times Binance's weight limit: pacing to 2,400 a minute (the last test here proves it) made
    the 14 aggTrades pages of weight 20 take 7 s."""
    with FakeBinance(coinm=(SYMBOL, "ETHUSD_PERP"), coinm_weight_limit=24_000) as fake:
        yield fake


def source(fake: FakeBinance, fast: dict[str, Any], **options: Any) -> dict[str, Any]:
    keys = {"plugin": "binance", "market": "coinm", "symbols": [SYMBOL], "timeframes": ["1h"],
            "start": "2024-01-01", "base_url": fake.url, **fast, **options}
    return {key: value for key, value in keys.items() if value is not None}  # None: leave the key out


def test_coinm_klines_land_exactly_in_windows_of_one_page(coinm, backfill_exactly, fast, log_events):
    """A year of 1h bars: windows of 499 bars (COIN-M answers a longer range with its newest bars only), weight 2
    each in the COIN-M weight, and only COIN-M's market type loaded."""
    result = backfill_exactly(source(coinm, fast), KLINE_COLUMNS, lambda symbol, start, end: coinm.expected_klines(
        symbol, "1h", start, end), "2024-01-01", "2025-01-01")

    requests = coinm.requests_to("/dapi/v1/klines")
    spans = [int(r.query["endTime"]) - int(r.query["startTime"]) + 1 for r in requests]
    assert spans[:-1] == [499 * HOUR] * (len(spans) - 1) and len(requests) == -(-366 * 24 // 499)
    assert [int(r.query["limit"]) for r in requests][:-1] == [499] * (len(requests) - 1)
    assert not coinm.requests_to("/api/v3/exchangeInfo") and not coinm.requests_to("/fapi/v1/exchangeInfo")
    assert len(coinm.requests_to("/dapi/v1/time")) == 1, "the exchange clock is COIN-M's"
    [use] = log_events(result.stderr, "rate limit use")
    assert use["weight"] == coinm.weight["coinm"].total == 1 + 1 + 2 * len(requests), "exchangeInfo, time, klines"
    assert coinm.weight["usdm"].total == 0


def test_coinm_daily_klines_stay_within_200_days_a_request(coinm, backfill_exactly, fast):
    """499 daily bars would span more than the 200 days COIN-M accepts between startTime and endTime."""
    backfill_exactly(source(coinm, fast, timeframes=["1d"]), KLINE_COLUMNS,
                     lambda symbol, start, end: coinm.expected_klines(symbol, "1d", start, end),
                     "2023-01-01", "2024-07-01")

    requests = coinm.requests_to("/dapi/v1/klines")
    assert all(int(r.query["endTime"]) - int(r.query["startTime"]) < 200 * DAY for r in requests)
    assert [int(r.query["limit"]) for r in requests] == [200, 200, 147]


def test_coinm_trades_land_exactly(coinm, pipeline, fast):
    market = pipeline(source(coinm, fast, dataset="trades", timeframes=None))
    result = market.backfill("2024-01-01T00:00:00", "2024-01-01T00:10:00")  # 13,000 trades: 14 pages

    assert result.exit_code == 0, result
    expected = coinm.expected_trades(SYMBOL, parse_time("2024-01-01"), parse_time("2024-01-01T00:10:00"))
    stored = market.rows("trades", SYMBOL, ("ts", "trade_id", "price", "size", "side"))
    assert sorted(stored, key=lambda row: int(row[1])) == expected
    assert coinm.requests_to("/dapi/v1/aggTrades") and not coinm.requests_to("/fapi/v1/aggTrades")


def test_coinm_funding_lands_without_a_mark_price(coinm, pipeline, fast):
    """COIN-M's fundingRate rows carry no ``markPrice``: the rates land, and no mark price column."""
    market = pipeline(source(coinm, fast, dataset="funding", timeframes=None))
    result = market.backfill("2024-01-01", "2024-03-01")

    assert result.exit_code == 0, result
    expected = coinm.expected_funding(SYMBOL, parse_time("2024-01-01"), parse_time("2024-03-01"))
    stored = market.rows("funding", SYMBOL, ("ts", "funding_rate"))
    assert stored == [(ts, rate) for ts, rate, _ in expected] and len(stored) == 60 * 3
    assert "mark_price" not in market.columns("funding")
    assert coinm.requests_to("/dapi/v1/fundingRate") and not coinm.requests_to("/fapi/v1/fundingRate")


def test_a_symbol_coinm_does_not_list_is_named_in_the_error(coinm, pipeline, fast):
    market = pipeline(source(coinm, fast, symbols=["BTCUSDT"]))
    result = market.backfill("2024-01-01", "2024-01-02")

    assert result.exit_code != 0
    assert "unknown symbol 'BTCUSDT' on the coinm market" in result.output
    assert not coinm.requests_to("/dapi/v1/klines")


@pytest.mark.parametrize(("dataset", "message"), [
    ("open_interest", "binance dataset 'open_interest' needs a perpetual-futures market: set market to 'usdm' "
                      "(it is 'coinm'; COIN-M is read for ohlcv, trades and funding)"),
    ("positioning", "binance dataset 'positioning' needs market = 'usdm' (it is 'coinm')"),
])
def test_usdm_only_datasets_are_refused_on_coinm(coinm, pipeline, fast, dataset, message):
    market = pipeline(source(coinm, fast, dataset=dataset, timeframes=["1h"] if dataset == "positioning" else None))
    result = market.backfill("2024-01-01", "2024-01-02")

    assert result.exit_code != 0
    assert message in result.output
    assert not coinm.requests



def test_the_coinm_weight_limit_binance_advertises_paces_the_backfill(backfill_exactly, fast, log_events):
    """COIN-M has a weight limit of its own (``/dapi/v1/exchangeInfo``): 30 per 5 seconds is kept without a 429,
    past several of its windows, and leaves the USD-M count untouched."""
    with FakeBinance(coinm=(SYMBOL,), coinm_weight_limit=30, weight_seconds=5) as fake:
        result = backfill_exactly(source(fake, fast, timeframes=["5m"]), KLINE_COLUMNS, lambda symbol, start, end:
                                  fake.expected_klines(symbol, "5m", start, end), "2024-01-01", "2024-02-10")

    assert fake.statuses[429] == 0
    assert fake.weight["coinm"].total == 1 + 1 + 2 * 23 + 1 > 30, "exchangeInfo, time, 23 pages of 499, one of 40"
    assert fake.weight["usdm"].total == 0
    [adopted] = log_events(result.stderr, "pacing by the advertised weight limits")
    assert adopted["limits"] == "30 per 5s" and adopted["market"] == "coinm"


def test_coinm_symbols_list_and_rank_through_the_coinm_tickers(coinm, pipeline, fast):
    """Selectors see COIN-M's markets (their ``contractStatus``) and rank them by ``/dapi/v1/ticker/24hr``."""
    from etl.testing import run_cli

    coinm.quote_volumes = {SYMBOL: 2.0, "ETHUSD_PERP": 5.0}
    coinm.listing_status["coinm"] = {"ETHUSD_PERP": "SETTLING"}
    market = pipeline(source(coinm, fast, symbols={"top": 2, "by": "quote_volume", "status": "all"}))
    result = run_cli("symbols", str(market.path), "--pipeline", "market")

    assert result.exit_code == 0, result
    assert result.stdout == ("symbol       status    quote volume 24h\n"
                             "ETHUSD_PERP  settling  5\n"
                             "BTCUSD_PERP  trading   2\n")
    assert len(coinm.requests_to("/dapi/v1/ticker/24hr")) == 1 and not coinm.requests_to("/fapi/v1/ticker/24hr")
