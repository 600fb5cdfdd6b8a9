"""The binance source, through the whole CLI into DuckDB, against the local fake of Binance's REST API."""

from __future__ import annotations

import pytest

from etl.testing import Reply
from etl.timeframes import DAY, HOUR, MINUTE, floor_ts, iso, now_ms, parse_time, previous_bar

KLINE_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume",
                 "taker_buy_quote_volume")
KLINE_LIMIT_ERROR = {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight per 1 "
                     "MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."}


def ohlcv(binance, symbols, fast, **options):
    return {"plugin": "binance", "symbols": list(symbols), "timeframes": ["1m"], "start": "2024-01-01",
            "base_url": binance.url, **fast, **options}


def test_two_months_of_1m_bars_for_two_symbols_land_exactly(binance, backfill_exactly, fast, log_events):
    source = ohlcv(binance, ["BTCUSDT", "ETHUSDT"], fast)

    result = backfill_exactly(source, KLINE_COLUMNS, lambda symbol, start, end: binance.expected_klines(
        symbol, "1m", start, end), "2024-01-01", "2024-03-01")

    start, end = parse_time("2024-01-01"), parse_time("2024-03-01")
    for symbol in source["symbols"]:
        requests = binance.requests_to("/api/v3/klines")
        pages = [int(r.query["startTime"]) for r in requests if r.query["symbol"] == symbol]
        assert sorted(pages) == list(range(start, end, 1000 * MINUTE)), "full pages of 1000, none twice"
    assert len(binance.requests_to("/api/v3/exchangeInfo")) == 1, "markets load once per run, not per stream"
    assert not binance.requests_to("/fapi/v1/exchangeInfo"), "only the spot market type is loaded"
    [use] = log_events(result.stderr, "rate limit use")
    assert use["weight"] == binance.weight["spot"].total == 20 + 1 + 2 * 2 * 87, "exchangeInfo, time, klines"


def test_usdm_pages_of_499_cost_weight_2(binance, backfill_exactly, fast, log_events):
    source = ohlcv(binance, ["BTCUSDT"], fast, market="usdm", timeframes=["5m"])

    result = backfill_exactly(source, KLINE_COLUMNS, lambda symbol, start, end: binance.expected_klines(
        symbol, "5m", start, end), "2024-01-01", "2024-01-08")

    limits = [int(r.query["limit"]) for r in binance.requests_to("/fapi/v1/klines")]
    assert limits == [499, 499, 499, 499, 20], "7 days of 5m bars are 2016: weight 2 a page, never 5"
    [use] = log_events(result.stderr, "rate limit use")
    assert use["weight"] == binance.weight["usdm"].total == 1 + 1 + 4 * 2 + 1, "exchangeInfo, time, klines"
    assert not binance.requests_to("/api/v3/klines")


def test_faults_are_retried_and_the_data_is_still_exact(binance, pipeline, fast, log_events):
    market = pipeline(ohlcv(binance, ["BTCUSDT", "ETHUSDT"], fast))
    page = binance.klines({"symbol": "BTCUSDT", "interval": "1m", "startTime": "1704067200000"}, "spot")
    binance.fail_on(
        "/api/v3/klines",
        Reply.json(KLINE_LIMIT_ERROR, 429, {"Retry-After": "1"}),
        Reply.json({"code": -1003, "msg": "Way too much request weight used; IP banned until 1704067260000."}, 418,
                   {"Retry-After": "1"}),
        Reply.json({"code": -1000, "msg": "An unknown error occurred while processing the request."}, 500),
        Reply.timeout(2.0),
        Reply.reset(),
        Reply.truncated(page),
        Reply.text("<html><body>502 Bad Gateway</body></html>", 200, {"Content-Type": "text/html"}),
    )
    binance.fail_next(Reply.reset())  # the market metadata request too

    result = market.backfill("2024-01-01", "2024-01-03")

    assert result.exit_code == 0, result
    start, end = parse_time("2024-01-01"), parse_time("2024-01-03")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert market.rows("ohlcv", symbol, KLINE_COLUMNS) == binance.expected_klines(symbol, "1m", start, end)
    retries = log_events(result.stderr, "retrying")
    assert len(retries) == 8
    banned = [event for event in retries if "DDoSProtection" in event["error"]]
    assert len(banned) == 2 and all(event["wait"] >= 1.0 for event in banned), "Retry-After is honoured"
    kinds = ("RequestTimeout", "NetworkError", "BadResponse", "OperationFailed")  # timeout, reset/cut, HTML, 500
    assert {kind for event in retries for kind in kinds if f": {kind}: " in event["error"]} == set(kinds)


def test_an_exchange_down_fails_the_later_streams_at_once_and_the_next_run_loads_them(binance, pipeline, fast):
    """Once a request has failed every retry, the run's other requests to the host fail without being sent:
    a cron run against an exchange under maintenance ends at once instead of retrying stream after stream."""
    market = pipeline(ohlcv(binance, ["BTCUSDT", "ETHUSDT"], fast, retry_attempts=3), concurrency=1)
    down = Reply.json({"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
                      503)
    binance.fail_on("/api/v3/klines", down, down, down)

    result = market.backfill("2024-01-01", "2024-01-02")

    assert result.exit_code == 1, result
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2 and "Internal error; unable to process your request" in failed[0], failed
    assert f"not sent: {binance.url.removeprefix('http://')} failed every retry earlier in this run" in failed[1]
    assert len(binance.requests_to("/api/v3/klines")) == 3

    assert market.backfill("2024-01-01", "2024-01-02").exit_code == 0
    start, end = parse_time("2024-01-01"), parse_time("2024-01-02")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert market.rows("ohlcv", symbol, KLINE_COLUMNS) == binance.expected_klines(symbol, "1m", start, end)


def test_an_unknown_symbol_fails_only_its_own_stream(binance, pipeline, fast):
    market = pipeline(ohlcv(binance, ["BTCUSDT", "BTCUSTD"], fast))

    result = market.backfill("2024-01-01", "2024-01-02")

    assert result.exit_code == 1
    assert "FAILED market ohlcv/BTCUSTD/1m: binance: unknown symbol 'BTCUSTD' on the spot market" in result.stdout
    assert "did you mean BTCUSDT?" in result.stdout
    start, end = parse_time("2024-01-01"), parse_time("2024-01-02")
    assert market.rows("ohlcv", "BTCUSDT", KLINE_COLUMNS) == binance.expected_klines("BTCUSDT", "1m", start, end)


@pytest.mark.parametrize(("path", "dataset", "body", "said"), [
    ("/api/v3/klines", "ohlcv", {"code": -1121, "msg": "Invalid symbol."}, "BadSymbol"),
    ("/futures/data/openInterestHist", "open_interest", {"code": -1130, "msg": "parameter 'startTime' is invalid."},
     "BadRequest"),
])
def test_a_request_binance_rejects_fails_the_stream_at_once_with_its_message(binance, pipeline, fast, path, dataset,
                                                                              body, said):
    source = ohlcv(binance, ["BTCUSDT"], fast)
    if dataset == "open_interest":
        del source["timeframes"]
        source.update(market="usdm", dataset=dataset, start=iso(now_ms() - 2 * DAY))
    market = pipeline(source)
    binance.fail_on(path, Reply.json(body, 400))

    result = market.run()

    assert result.exit_code == 1
    assert f"FAILED market {dataset}/BTCUSDT" in result.stdout
    assert said in result.stdout and body["msg"] in result.stdout
    assert len(binance.requests_to(path)) == 1, "a permanent error is not retried"


def test_funding_rates_page_from_start_time(binance, pipeline, fast, log_events):
    market = pipeline({"plugin": "binance", "market": "usdm", "dataset": "funding", "symbols": ["BTCUSDT", "ETHUSDT"],
                       "start": "2023-01-01", "base_url": binance.url, **fast})

    result = market.backfill("2023-01-01", "2024-03-01")

    assert result.exit_code == 0, result
    start, end = parse_time("2023-01-01"), parse_time("2024-03-01")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        expected = binance.expected_funding(symbol, start, end)
        assert len(expected) > 1000
        assert market.rows("funding", symbol, ("ts", "funding_rate", "mark_price")) == expected
        pages = [r.query for r in binance.requests_to("/fapi/v1/fundingRate") if r.query["symbol"] == symbol]
        assert [int(page["startTime"]) for page in pages] == [start, expected[999][0] + 1]
    assert expected[0][0] % HOUR != 0 or expected[1][0] % HOUR != 0, "funding times keep Binance's late milliseconds"
    [use] = log_events(result.stderr, "rate limit use")
    assert use["funding"] == binance.funding_window.total == 4, "fundingRate has its own limit"


@pytest.mark.parametrize("clock_offset", [0, 10 * MINUTE], ids=["same-clock", "binance-10-minutes-ahead"])
def test_open_interest_starts_at_the_30_days_binance_keeps(binance, pipeline, fast, log_events, clock_offset):
    binance.clock_offset_ms = clock_offset
    asked = floor_ts(now_ms() - 60 * DAY, "1d")
    market = pipeline({"plugin": "binance", "market": "usdm", "dataset": "open_interest", "symbols": ["BTCUSDT"],
                       "period": "1h", "start": iso(asked), "base_url": binance.url, **fast})

    result = market.run()

    assert result.exit_code == 0, result
    requests = binance.requests_to("/futures/data/openInterestHist")
    assert min(int(r.query["startTime"]) for r in requests) >= binance.now_ms() - 30 * DAY - MINUTE
    assert all(r.query["period"] == "1h" and r.query["limit"] == "500" for r in requests)
    stored = market.rows("open_interest", "BTCUSDT", ("ts", "open_interest", "open_interest_value"))
    first, last = stored[0][0], stored[-1][0]
    assert first <= binance.now_ms() - 30 * DAY + 2 * HOUR
    assert last >= floor_ts(now_ms(), "1h") - HOUR
    assert stored == binance.expected_open_interest("BTCUSDT", "1h", first, last + 1)
    assert len(stored) > 500 and len(requests) == 2
    [use] = log_events(result.stderr, "rate limit use")
    assert use["open_interest"] == binance.open_interest_window.total == 2, "openInterestHist has its own limit"
    [warning] = log_events(result.stderr, "open interest history starts later")
    assert warning["asked"] == iso(asked)


def test_funding_on_the_spot_market_is_a_configuration_error(binance, pipeline):
    market = pipeline({"plugin": "binance", "dataset": "funding", "symbols": ["BTCUSDT"], "start": "2024-01-01",
                       "base_url": binance.url})

    result = market.run()

    assert result.exit_code == 2
    assert "binance dataset 'funding' needs a perpetual-futures market: set market to 'usdm'" in result.stderr
    assert not binance.requests


def test_validate_touches_no_network(binance, pipeline):
    market = pipeline(ohlcv(binance, ["BTCUSDT"], {}, market="usdm", period="5m"))

    from etl.testing import run_cli

    result = run_cli("validate", str(market.path))

    assert result.exit_code == 0, result
    assert not binance.requests


def test_without_the_exchange_clock_the_local_clock_bounds_bars(binance, backfill_exactly, fast, log_events):
    binance.fail_on("/api/v3/time", Reply.json({"code": -1100, "msg": "Illegal characters found in a parameter."},
                                               400))

    result = backfill_exactly(ohlcv(binance, ["BTCUSDT"], fast), KLINE_COLUMNS, lambda symbol, start, end:
                              binance.expected_klines(symbol, "1m", start, end), "2024-01-01", "2024-01-02")

    [warning] = log_events(result.stderr, "exchange clock unavailable, using the local clock")
    assert "Illegal characters" in warning["error"]


def test_monthly_bars_start_on_the_first_of_each_month(binance, backfill_exactly, fast):
    source = ohlcv(binance, ["BTCUSDT"], fast, timeframes=["1M"])

    backfill_exactly(source, KLINE_COLUMNS, lambda symbol, start, end: binance.expected_klines(
        symbol, "1M", start, end), "2020-01-01", "2024-03-01")

    [request] = binance.requests_to("/api/v3/klines")
    assert request.query["interval"] == "1M" and request.query["limit"] == "50"


def test_the_month_still_open_is_left_for_a_later_run(binance, pipeline, fast, frozen_clock):
    market = pipeline(ohlcv(binance, ["BTCUSDT"], fast, timeframes=["1M"], start="2024-01-01"))

    result = market.run()

    assert result.exit_code == 0, result
    current = floor_ts(frozen_clock, "1M")  # a month ending between the run and here would be one more
    stored = market.rows("ohlcv", "BTCUSDT", KLINE_COLUMNS)
    assert stored == binance.expected_klines("BTCUSDT", "1M", parse_time("2024-01-01"), current)
    assert stored[-1][0] == previous_bar(current, "1M")


def test_the_weight_limit_binance_advertises_paces_the_backfill(backfill_exactly, fast, log_events):
    """Limits differ per address and change: a budget far below the documented 6000 per minute (here 60 per
    5 seconds, read from exchangeInfo) is kept without a single 429, past several of its windows."""
    from fixtures.fake_binance import FakeBinance

    with FakeBinance(spot_weight_limit=60, weight_seconds=5) as binance:
        result = backfill_exactly(ohlcv(binance, ["BTCUSDT", "ETHUSDT"], fast), KLINE_COLUMNS, lambda symbol, start,
                                  end: binance.expected_klines(symbol, "1m", start, end), "2024-01-01", "2024-01-11")

    assert binance.statuses[429] == 0
    assert binance.weight["spot"].total == 20 + 1 + 2 * 2 * 15 > 60, "more weight than one window allows"
    [adopted] = log_events(result.stderr, "pacing by the advertised weight limits")
    assert adopted["limits"] == "60 per 5s"


def test_weight_another_client_used_is_left_to_it(backfill_exactly, fast):
    """The X-MBX-USED-WEIGHT header counts every client of the address (another process, a run that just
    ended): the source keeps what it says is left, not what its own bucket holds."""
    from fixtures.fake_binance import FakeBinance

    with FakeBinance(spot_weight_limit=60, weight_seconds=5) as binance:
        binance.weight["spot"].charge(30)
        backfill_exactly(ohlcv(binance, ["BTCUSDT", "ETHUSDT"], fast), KLINE_COLUMNS, lambda symbol, start, end:
                         binance.expected_klines(symbol, "1m", start, end), "2024-01-01", "2024-01-04")

    assert binance.statuses[429] == 0


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("base_url", "cause"), [
    (f"http://127.0.0.1:{closed_port()}", "NetworkError: connection refused: binance GET http://127.0.0.1:"),
    ("http://binance.invalid", "NetworkError: DNS failure ("),
], ids=["refused", "dns"])
def test_an_exchange_that_does_not_answer_fails_the_run_in_seconds_saying_why(pipeline, base_url, cause):
    """The default retries (8 tries, backoff from 0.5 s) are for hosts that answer; one that does not gets 3."""
    import time

    market = pipeline({"plugin": "binance", "symbols": ["BTCUSDT", "ETHUSDT"], "timeframes": ["1m"],
                       "start": "2024-01-01", "base_url": base_url})
    started = time.monotonic()

    result = market.backfill("2024-01-01", "2024-01-02")

    assert time.monotonic() - started < 20
    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2
    assert all(f"binance load markets: {cause}" in line for line in failed), failed


@pytest.mark.parametrize(("fault", "cause"), [
    (Reply.timeout(2.0), "RequestTimeout: timed out waiting for the answer: binance GET"),
    (Reply.reset(), "NetworkError: connection reset or closed before the answer: binance GET"),
    (Reply.json({"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}, 503),
     'OperationFailed: HTTP 503: binance {"code":-1001,"msg":"Internal error; unable to process your request.'),
], ids=["timeout", "reset", "503"])
def test_a_failed_stream_names_the_cause(binance, pipeline, fast, fault, cause):
    market = pipeline(ohlcv(binance, ["BTCUSDT"], fast, retry_attempts=2))
    binance.fail_on("/api/v3/klines", fault, fault)

    result = market.backfill("2024-01-01", "2024-01-02")

    assert result.exit_code == 1
    [failed] = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed.startswith(f"FAILED market ohlcv/BTCUSDT/1m: binance ohlcv/BTCUSDT/1m (publicGetKlines): {cause}")
