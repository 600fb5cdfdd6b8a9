"""The generic ccxt source (any ccxt exchange, through ``fetch_ohlcv``), tested as ``exchange = "binance"`` and
``exchange = "bybit"`` against the local fakes."""

from __future__ import annotations

from etl.testing import Reply, run_cli

OHLCV_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def generic(fake, exchange, symbols, fast, **options):
    return {"plugin": "ccxt", "exchange": exchange, "symbols": list(symbols), "timeframes": ["1h"],
            "start": "2024-01-01", "base_url": fake.url, **fast, **options}


def test_binance_through_the_generic_path_lands_exactly(binance, backfill_exactly, fast):
    source = generic(binance, "binance", ["BTCUSDT", "ETH/USDT"], fast)  # an id, and ccxt's unified symbol

    backfill_exactly(source, OHLCV_COLUMNS, lambda symbol, start, end: [
        row[:6] for row in binance.expected_klines(symbol.replace("/", ""), "1h", start, end)
    ], "2023-10-01", "2024-03-01")

    assert {r.query["limit"] for r in binance.requests_to("/api/v3/klines")} == {"1000"}, "ccxt's page limit"
    assert len(binance.requests_to("/api/v3/exchangeInfo")) == 1


def test_bybit_swap_market_through_the_generic_path(bybit, backfill_exactly, fast):
    source = generic(bybit, "bybit", ["ETHUSDT"], fast, market="swap",
                     exchange_options={"fetchMarkets": {"types": ["linear"]}})

    backfill_exactly(source, OHLCV_COLUMNS, lambda symbol, start, end: [
        row[:6] for row in bybit.expected_klines(symbol, "linear", "60", start, end)
    ], "2024-01-01", "2024-02-01")

    assert {r.query["category"] for r in bybit.requests_to("/v5/market/instruments-info")} == {"linear"}


def test_faults_are_retried_and_the_data_is_still_exact(binance, backfill_exactly, fast):
    binance.fail_on("/api/v3/klines", Reply.json({"code": -1003, "msg": "Too much request weight used"}, 429,
                                                 {"Retry-After": "1"}), Reply.reset(), Reply.timeout(2.0))

    backfill_exactly(generic(binance, "binance", ["BTCUSDT"], fast), OHLCV_COLUMNS, lambda symbol, start, end: [
        row[:6] for row in binance.expected_klines(symbol, "1h", start, end)
    ], "2024-01-01", "2024-02-01")

    assert len(binance.requests_to("/api/v3/klines")) == 3 + 1, "three faults, then the one page of January"


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
