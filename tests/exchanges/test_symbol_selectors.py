"""Symbol selectors against the fake exchanges, through the real CLI: the listing changes between two runs (a new
listing joins at ``start``, delisted symbols stop without failing the run), the choice lands in the ledger, and
``etl symbols`` prints it."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from etl.testing import Reply, run_cli
from etl.timeframes import parse_time

START, END = "2024-01-01", "2024-01-02"
COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def selected(source: dict[str, Any], fake: Any, selector: dict[str, Any], fast: dict[str, Any]) -> dict[str, Any]:
    return {**source, "symbols": selector, "timeframes": ["1h"], "start": START, "end": END, "base_url": fake.url,
            **fast}


def ledger(market: Any, sql: str) -> list[tuple]:
    with sqlite3.connect(market.path.parent / ".etl" / "ledger.db") as db:
        return db.execute(sql).fetchall()


def last_run_streams(market: Any) -> list[tuple]:
    return ledger(market, "select stream, status, rows, error from stream_runs where run_id = "
                          "(select id from runs order by started desc, rowid desc limit 1) order by stream")


def symbols(market: Any, *options: str) -> Any:
    result = run_cli("symbols", str(market.path), "--pipeline", "market", *options)
    assert result.exit_code == 0, result
    return result


def test_a_new_listing_joins_and_delisted_symbols_stop(binance, pipeline, fast):
    binance.symbols["spot"] = {"BTCUSDT", "ETHUSDT", "LUNAUSDT", "BTCUPUSDT", "ETHBTC"}
    market = pipeline(selected({"plugin": "binance"}, binance, {"match": ["*USDT"], "exclude": ["*UP*"]}, fast))

    assert symbols(market).stdout == (
        "symbol    status   quote volume 24h\n"
        "BTCUSDT   trading\n"
        "ETHUSDT   trading\n"
        "LUNAUSDT  trading\n"
    )
    first = market.run()
    assert first.exit_code == 0 and "3 streams, 72 rows" in first.summary, first
    assert ledger(market, "select symbol, status, selected from run_symbols order by rowid") == [
        ("BTCUSDT", "trading", 1), ("ETHUSDT", "trading", 1), ("LUNAUSDT", "trading", 1)]

    binance.symbols["spot"] = {"BTCUSDT", "LUNAUSDT", "SOLUSDT", "BTCUPUSDT", "ETHBTC"}  # ETH gone, SOL new
    binance.listing_status["spot"]["LUNAUSDT"] = "BREAK"  # still listed, no longer trading
    second = market.run()
    assert second.exit_code == 0, second
    assert "4 streams, 24 rows" in second.summary and "0 failed" in second.summary
    assert last_run_streams(market) == [
        ("ohlcv/BTCUSDT/1h", "skipped", 0, "up to date"),
        ("ohlcv/ETHUSDT/1h", "skipped", 0, "delisted: binance no longer lists it; its stream stops"),
        ("ohlcv/LUNAUSDT/1h", "skipped", 0, "delisted: binance lists it as break; its stream stops"),
        ("ohlcv/SOLUSDT/1h", "ok", 24, None),
    ]
    lo, hi = parse_time(START), parse_time(END)
    for symbol in ("BTCUSDT", "ETHUSDT", "LUNAUSDT", "SOLUSDT"):
        expected = [row[:6] for row in binance.expected_klines(symbol, "1h", lo, hi)]
        assert market.rows("ohlcv", symbol, COLUMNS) == expected, "the new listing starts at start"
    assert ledger(market, "select symbol, selected, note from run_symbols where run_id = (select run_id from "
                          "run_symbols order by rowid desc limit 1) order by rowid") == [
        ("BTCUSDT", 1, None), ("SOLUSDT", 1, None),
        ("ETHUSDT", 0, "delisted: binance no longer lists it"), ("LUNAUSDT", 0, "delisted: binance lists it as break")]

    status = run_cli("status", str(market.path)).stdout
    assert [line.split()[1] for line in status.splitlines()[1:]] == ["ohlcv/BTCUSDT/1h", "ohlcv/SOLUSDT/1h"], \
        "etl status shows the last run's choice"
    dry = run_cli("backfill", str(market.path), "--pipeline", "market", "--start", START, "--end", END, "--dry-run")
    assert [line.split(":")[0] for line in dry.stdout.splitlines()] == ["ohlcv/BTCUSDT/1h", "ohlcv/SOLUSDT/1h"]

    third = market.run()
    assert (third.exit_code, last_run_streams(market)) == (0, [
        ("ohlcv/BTCUSDT/1h", "skipped", 0, "up to date"), ("ohlcv/SOLUSDT/1h", "skipped", 0, "up to date")
    ]), "a symbol stops once: it is not reported again"


def test_status_all_keeps_delisted_symbols_for_history(binance, pipeline, fast):
    binance.symbols["spot"] = {"BTCUSDT", "LUNAUSDT"}
    binance.listing_status["spot"]["LUNAUSDT"] = "BREAK"
    market = pipeline(selected({"plugin": "binance"}, binance, {"match": ["*USDT"], "status": "all"}, fast))
    listed = json.loads(symbols(market, "--json").stdout)
    assert listed == {"pipeline": "market", "source": "binance",
                      "selector": {"match": ["*USDT"], "exclude": [], "status": "all", "top": None, "by": None},
                      "symbols": [{"symbol": "BTCUSDT", "status": "trading", "quote_volume": None},
                                  {"symbol": "LUNAUSDT", "status": "break", "quote_volume": None}]}
    result = market.run()
    assert result.exit_code == 0 and "2 streams, 48 rows" in result.summary, result
    assert binance.requests_to("/api/v3/ticker/24hr") == [], "no ticker request without top"


def test_top_by_quote_volume_follows_the_ranking(bybit, pipeline, fast):
    bybit.symbols["linear"] = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"}
    bybit.quote_volumes = {"BTCUSDT": 9e9, "ETHUSDT": 5e9, "SOLUSDT": 2e9, "DOGEUSDT": 1e9}
    selector = {"match": ["*USDT"], "top": 2, "by": "quote_volume"}
    market = pipeline(selected({"plugin": "bybit", "market": "linear"}, bybit, selector, fast))
    assert symbols(market).stdout == (
        "symbol   status   quote volume 24h\n"
        "BTCUSDT  trading  9,000,000,000\n"
        "ETHUSDT  trading  5,000,000,000\n"
    )
    assert {request.query["category"] for request in bybit.requests_to("/v5/market/tickers")} == {"linear"}
    assert market.run().exit_code == 0

    bybit.quote_volumes["SOLUSDT"] = 6e9
    second = market.run()
    assert second.exit_code == 0, second
    assert last_run_streams(market) == [
        ("ohlcv/BTCUSDT/1h", "skipped", 0, "up to date"),
        ("ohlcv/ETHUSDT/1h", "skipped", 0, "no longer in the top 2 by quote_volume; its stream stops"),
        ("ohlcv/SOLUSDT/1h", "ok", 24, None),
    ]
    assert ledger(market, "select symbol, quote_volume from run_symbols where selected = 1 order by rowid desc "
                          "limit 2") == [("SOLUSDT", 6e9), ("BTCUSDT", 9e9)]


def test_generic_ccxt_and_usdm_rank_through_the_venue_tickers(binance, pipeline, fast):
    binance.symbols["usdm"] = {"BTCUSDT", "ETHUSDT", "XRPUSDT"}
    binance.quote_volumes = {"BTCUSDT": 3.0, "ETHUSDT": 1.0, "XRPUSDT": 2.0}
    selector = {"top": 2, "by": "quote_volume"}
    usdm = pipeline(selected({"plugin": "binance", "market": "usdm"}, binance, selector, fast))
    assert [row["symbol"] for row in json.loads(symbols(usdm, "--json").stdout)["symbols"]] == ["BTCUSDT", "XRPUSDT"]
    assert len(binance.requests_to("/fapi/v1/ticker/24hr")) == 1

    binance.symbols["spot"] = {"BTCUSDT", "ETHUSDT", "ETHBTC"}
    generic = pipeline(selected({"plugin": "ccxt", "exchange": "binance"}, binance, selector, fast))
    assert symbols(generic).stdout == (
        "symbol   status   quote volume 24h\n"
        "ETHBTC   trading  1,000,000\n"
        "BTCUSDT  trading  3\n"
    ), "ranked by volume, the largest first (ETHBTC has the fake's default)"
    assert len(binance.requests_to("/api/v3/ticker/24hr")) == 1
    every = pipeline(selected({"plugin": "ccxt", "exchange": "binance"}, binance, {"match": ["*"]}, fast))
    assert [line.split()[0] for line in symbols(every).stdout.splitlines()[1:]] == ["BTCUSDT", "ETHBTC", "ETHUSDT"], \
        "only the spot markets, though ccxt loads Binance's futures too (XRPUSDT)"


def test_symbols_of_a_typed_list_show_their_listing_status(binance, pipeline, fast, tmp_path):
    typed = pipeline({"plugin": "binance", "symbols": ["BTCUSDT", "DOGEUSDT"], "timeframes": ["1h"],
                      "base_url": binance.url, **fast})
    assert symbols(typed).stdout == "symbol    status      quote volume 24h\nBTCUSDT   trading\nDOGEUSDT  not listed\n"
    files = pipeline({"plugin": "files", "path": "x.csv", "symbols": ["BTC"], "timeframes": ["1h"]})
    assert symbols(files).stdout == "symbol  status   quote volume 24h\nBTC     unknown\n", "files cannot list"

    binance.fail_on("/api/v3/exchangeInfo", *[Reply.json({"code": -1001, "msg": "Internal error"}, 503)] * 2)
    down = pipeline({"plugin": "binance", "symbols": {"match": ["*USDT"]}, "timeframes": ["1h"],
                     "base_url": binance.url, "retry_attempts": 2, **fast})
    result = run_cli("symbols", str(down.path), "--pipeline", "market")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines()[-1] == (
        'Error: market: cannot list the symbols: binance load markets: OperationFailed: HTTP 503: binance '
        '{"code":-1001,"msg":"Internal error"}')


def test_a_listing_that_fails_fails_the_pipeline_and_a_selector_may_match_nothing(binance, pipeline, fast):
    market = pipeline(selected({"plugin": "binance", "retry_attempts": 2}, binance, {"match": ["*USDT"]}, fast))
    binance.fail_on("/api/v3/exchangeInfo", *[Reply.json({"code": -1001, "msg": "Internal error"}, 503)] * 2)
    failed = market.run()
    assert failed.exit_code == 1
    assert failed.stdout.splitlines()[0] == (
        "FAILED market ohlcv/<symbols>: cannot list the symbols of the selector: binance load markets: "
        'OperationFailed: HTTP 503: binance {"code":-1001,"msg":"Internal error"}')
    assert "1 streams, 0 rows" in failed.summary and "1 failed" in failed.summary

    nothing = pipeline(selected({"plugin": "binance"}, binance, {"match": ["*EUR"]}, fast))
    result = nothing.run()
    assert (result.exit_code, "0 streams, 0 rows" in result.summary) == (0, True), result
    assert symbols(nothing).stdout == "no symbol matches the selector\n"
