"""The generic ccxt source (any ccxt exchange, through ``fetch_ohlcv``), tested as ``exchange = "binance"`` and
``exchange = "bybit"`` against the local fakes."""

from __future__ import annotations

from etl.testing import Reply, run_cli
from etl.timeframes import HOUR, floor_ts, iso, now_ms, parse_time

OHLCV_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def generic(fake, exchange, symbols, fast, **options):
    return {"plugin": "ccxt", "exchange": exchange, "symbols": list(symbols), "timeframes": ["1h"],
            "start": "2024-01-01", "base_url": fake.url, **fast, **options}


def test_binance_through_the_generic_path_lands_exactly(binance, pipeline, fast):
    market = pipeline(generic(binance, "binance", ["BTCUSDT", "ETH/USDT"], fast))

    result = market.backfill("2023-10-01", "2024-03-01")

    assert result.exit_code == 0, result
    start, end = parse_time("2023-10-01"), parse_time("2024-03-01")
    for symbol, market_id in (("BTCUSDT", "BTCUSDT"), ("ETH/USDT", "ETHUSDT")):
        expected = [row[:6] for row in binance.expected_klines(market_id, "1h", start, end)]
        assert market.rows("ohlcv", symbol, OHLCV_COLUMNS) == expected, "stored under the symbol as written"
    assert market.columns("ohlcv") == ["source", "symbol", "timeframe", *OHLCV_COLUMNS]
    assert {r.query["limit"] for r in binance.requests_to("/api/v3/klines")} == {"1000"}, "ccxt's page limit"
    assert len(binance.requests_to("/api/v3/exchangeInfo")) == 1


def test_bybit_swap_market_through_the_generic_path(bybit, pipeline, fast):
    market = pipeline(generic(bybit, "bybit", ["ETHUSDT"], fast, market="swap",
                              exchange_options={"fetchMarkets": {"types": ["linear"]}}))

    result = market.backfill("2024-01-01", "2024-02-01")

    assert result.exit_code == 0, result
    start, end = parse_time("2024-01-01"), parse_time("2024-02-01")
    expected = [row[:6] for row in bybit.expected_klines("ETHUSDT", "linear", "60", start, end)]
    assert market.rows("ohlcv", "ETHUSDT", OHLCV_COLUMNS) == expected
    assert {r.query["category"] for r in bybit.requests_to("/v5/market/instruments-info")} == {"linear"}


def test_faults_are_retried_and_the_data_is_still_exact(binance, pipeline, fast):
    market = pipeline(generic(binance, "binance", ["BTCUSDT"], fast))
    binance.fail_on("/api/v3/klines", Reply.json({"code": -1003, "msg": "Too much request weight used"}, 429,
                                                 {"Retry-After": "1"}), Reply.reset(), Reply.timeout(2.0))

    result = market.backfill("2024-01-01", "2024-02-01")

    assert result.exit_code == 0, result
    start, end = parse_time("2024-01-01"), parse_time("2024-02-01")
    expected = [row[:6] for row in binance.expected_klines("BTCUSDT", "1h", start, end)]
    assert market.rows("ohlcv", "BTCUSDT", OHLCV_COLUMNS) == expected


def test_an_unknown_symbol_fails_only_its_own_stream(binance, pipeline, fast):
    market = pipeline(generic(binance, "binance", ["BTCUSDT", "DOGEUSDT"], fast))

    result = market.backfill("2024-01-01", "2024-01-03")

    assert result.exit_code == 1
    assert "FAILED market ohlcv/DOGEUSDT/1h: ccxt: unknown symbol 'DOGEUSDT' on the spot market" in result.stdout
    assert len(market.rows("ohlcv", "BTCUSDT", ("ts",))) == 48


def test_a_symbol_of_another_market_type_says_which_to_choose(binance, pipeline, fast):
    from fixtures.fake_binance import FakeBinance

    with FakeBinance(spot=("BTCUSDT",), usdm=("BTCUSDT", "SOLUSDT")) as futures_only:
        market = pipeline(generic(futures_only, "binance", ["SOLUSDT"], fast))

        result = market.backfill("2024-01-01", "2024-01-03")

    assert result.exit_code == 1
    assert "'SOLUSDT' is a swap market, not spot; set market accordingly" in result.stdout


def test_the_open_bar_is_never_stored(binance, pipeline, fast):
    binance.clock_offset_ms = -90 * 60_000  # the exchange's clock 90 minutes behind: its forming bar is one we ask for
    start = floor_ts(now_ms(), "1h") - 6 * HOUR
    market = pipeline(generic(binance, "binance", ["BTCUSDT"], fast, start=iso(start)))

    result = market.run()

    assert result.exit_code == 0, result
    assert binance.open_bars_served >= 1
    stored = market.rows("ohlcv", "BTCUSDT", OHLCV_COLUMNS)
    assert stored == [row[:6] for row in binance.expected_klines("BTCUSDT", "1h", start, stored[-1][0] + HOUR)]
    assert stored[-1][0] + HOUR <= binance.now_ms()


def test_an_unknown_exchange_is_a_configuration_error(binance, pipeline):
    market = pipeline(generic(binance, "binanse", ["BTCUSDT"], {}))

    result = run_cli("validate", str(market.path))

    assert result.exit_code == 2
    assert "ccxt has no exchange 'binanse' (key 'exchange'); did you mean binance" in result.stderr
    assert not binance.requests


def test_a_timeframe_the_exchange_lacks_is_a_configuration_error(bybit, pipeline):
    market = pipeline(generic(bybit, "bybit", ["BTCUSDT"], {}, timeframes=["8h"]))

    result = run_cli("validate", str(market.path))

    assert result.exit_code == 2
    assert "ccxt exchange 'bybit' has no timeframe '8h'" in result.stderr
    assert not bybit.requests
