"""The bybit source, through the whole CLI into DuckDB, against the local fake of Bybit's v5 REST API."""

from __future__ import annotations

import pytest

from etl.testing import Reply
from etl.timeframes import DAY, HOUR, MINUTE, iso, parse_time

KLINE_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "turnover")
ENVELOPE = {"result": {}, "retExtInfo": {}, "time": 1726147060461}


def ohlcv(bybit, symbols, fast, **options):
    return {"plugin": "bybit", "market": "linear", "symbols": list(symbols), "timeframes": ["1m"],
            "start": "2024-01-01", "base_url": bybit.url, **fast, **options}


def test_two_months_of_1m_bars_for_two_symbols_land_exactly(bybit, backfill_exactly, fast, log_events):
    source = ohlcv(bybit, ["BTCUSDT", "ETHUSDT"], fast)

    result = backfill_exactly(source, KLINE_COLUMNS, lambda symbol, start, end: bybit.expected_klines(
        symbol, "linear", "1", start, end), "2024-01-01", "2024-03-01")

    start, end = parse_time("2024-01-01"), parse_time("2024-03-01")
    for symbol in source["symbols"]:
        windows = [(int(r.query["start"]), int(r.query["end"]), r.query["limit"])
                   for r in bybit.requests_to("/v5/market/kline") if r.query["symbol"] == symbol]
        assert sorted(windows) == [(lo, min(lo + 1000 * MINUTE, end) - 1, str(min(1000, (end - lo) // MINUTE)))
                           for lo in range(start, end, 1000 * MINUTE)], "one request per window of 1000 bars"
    loads = bybit.requests_to("/v5/market/instruments-info")
    assert {r.query["category"] for r in loads} == {"linear"}
    assert len(loads) == 2, "markets load once per run (ccxt asks for trading and pre-launch instruments)"
    [use] = log_events(result.stderr, "rate limit use")
    assert use["requests"] == bybit.window.total == len(bybit.requests), "every request takes a token"


@pytest.mark.parametrize(("market_type", "symbol", "interval", "timeframe"), [
    ("spot", "ETHUSDT", "D", "1d"),
    ("inverse", "BTCUSD", "60", "1h"),
])
def test_spot_and_inverse_markets(bybit, backfill_exactly, fast, market_type, symbol, interval, timeframe):
    source = ohlcv(bybit, [symbol], fast, market=market_type, timeframes=[timeframe])

    backfill_exactly(source, KLINE_COLUMNS, lambda symbol, start, end: bybit.expected_klines(
        symbol, market_type, interval, start, end), "2023-06-01", "2024-03-01")

    assert {r.query["category"] for r in bybit.requests_to("/v5/market/kline")} == {market_type}


def test_faults_are_retried_and_the_data_is_still_exact(bybit, pipeline, fast, log_events):
    market = pipeline(ohlcv(bybit, ["BTCUSDT", "ETHUSDT"], fast))
    page = bybit.route(_get("/v5/market/kline", category="linear", symbol="BTCUSDT", interval="1"))
    bybit.fail_on(
        "/v5/market/kline",
        Reply.json({"retCode": 10006, "retMsg": "Too many visits!", **ENVELOPE}),
        Reply.text("access too frequent", 403),
        Reply.text("<html><body>502 Bad Gateway</body></html>", 502, {"Content-Type": "text/html"}),
        Reply.timeout(2.0),
        Reply.reset(),
        Reply.truncated(page),
        Reply.json({"retCode": 0, "retMsg": "OK", "result": {}, "retExtInfo": {}, "time": 1}),
        Reply.json({"message": "Too Many Requests"}, 429, {"Retry-After": "1"}),  # a proxy's, not Bybit's
    )
    bybit.fail_next(Reply.reset())  # the market metadata request too

    result = market.backfill("2024-01-01", "2024-01-03")

    assert result.exit_code == 0, result
    start, end = parse_time("2024-01-01"), parse_time("2024-01-03")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert market.rows("ohlcv", symbol, KLINE_COLUMNS) == bybit.expected_klines(symbol, "linear", "1", start, end)
    events = log_events(result.stderr, "retrying")
    retries = [event["error"] for event in events]
    assert len(retries) == 9
    assert sum("RateLimitExceeded" in error for error in retries) == 2, "retCode 10006 and HTTP 403"
    assert any("unexpected answer" in error for error in retries), "an envelope without a list is retried"
    [proxy] = [event for event in events if "Too Many Requests" in event["error"]]
    assert proxy["wait"] >= 1.0, "a 429 is transient whatever its body, and its Retry-After is honoured"


def test_an_unknown_symbol_fails_only_its_own_stream(bybit, pipeline, fast):
    market = pipeline(ohlcv(bybit, ["BTCUSDT", "ETHUSD"], fast))

    result = market.backfill("2024-01-01", "2024-01-02")

    assert result.exit_code == 1
    assert "FAILED market ohlcv/ETHUSD/1m: bybit: unknown symbol 'ETHUSD' on the linear market" in result.stdout
    start, end = parse_time("2024-01-01"), parse_time("2024-01-02")
    assert market.rows("ohlcv", "BTCUSDT", KLINE_COLUMNS) == bybit.expected_klines("BTCUSDT", "linear", "1", start,
                                                                                      end)
    assert not [r for r in bybit.requests_to("/v5/market/kline") if r.query["symbol"] == "ETHUSD"]


def test_a_symbol_bybit_rejects_fails_the_stream_at_once_with_its_message(bybit, pipeline, fast):
    market = pipeline(ohlcv(bybit, ["BTCUSDT"], fast))
    bybit.fail_on("/v5/market/kline", Reply.json({"retCode": 10001, "retMsg": "Not supported symbols", **ENVELOPE}))

    result = market.backfill("2024-01-01", "2024-01-02")

    assert result.exit_code == 1
    assert "FAILED market ohlcv/BTCUSDT/1m" in result.stdout
    assert "BadSymbol" in result.stdout and "Not supported symbols" in result.stdout
    assert len(bybit.requests_to("/v5/market/kline")) == 1, "a permanent error is not retried"


def test_funding_history_is_complete_when_the_interval_was_shorter_before(pipeline, fast):
    from fixtures.fake_bybit import LISTED, FakeBybit

    switch = parse_time("2024-01-20")
    with FakeBybit(funding_intervals={"ETHUSDT": [(LISTED, 60), (switch, 480)]}) as bybit:
        market = pipeline({"plugin": "bybit", "market": "linear", "dataset": "funding",
                           "symbols": ["BTCUSDT", "ETHUSDT"], "start": "2023-10-01", "base_url": bybit.url, **fast})

        result = market.backfill("2023-10-01", "2024-03-01")

        assert result.exit_code == 0, result
        start, end = parse_time("2023-10-01"), parse_time("2024-03-01")
        for symbol in ("BTCUSDT", "ETHUSDT"):
            expected = bybit.expected_funding(symbol, start, end)
            assert market.rows("funding", symbol, ("ts", "funding_rate")) == expected
        requests = [r.query for r in bybit.requests_to("/v5/market/funding/history")]
        eth = [query for query in requests if query["symbol"] == "ETHUSDT"]
        assert len(eth) > len(requests) - len(eth), "hourly funding before the switch took extra pages"
        assert all("endTime" in query and "startTime" in query for query in requests)
        assert len(bybit.expected_funding("ETHUSDT", start, switch)) > 200 * 8


def test_open_interest_follows_the_cursor(bybit, pipeline, fast):
    market = pipeline({"plugin": "bybit", "market": "linear", "dataset": "open_interest", "symbols": ["BTCUSDT"],
                       "period": "1h", "start": "2024-01-01", "base_url": bybit.url, **fast})

    result = market.backfill("2024-01-01", "2024-03-01")

    assert result.exit_code == 0, result
    start, end = parse_time("2024-01-01"), parse_time("2024-03-01")
    stored = market.rows("open_interest", "BTCUSDT", ("ts", "open_interest"))
    assert stored == bybit.expected_open_interest("BTCUSDT", "1h", start, end)
    assert len(stored) == (end - start) // HOUR
    requests = bybit.requests_to("/v5/market/open-interest")
    assert sum("cursor" in r.query for r in requests) >= 4
    assert {r.query["intervalTime"] for r in requests} == {"1h"}


def test_open_interest_on_spot_is_a_configuration_error(bybit, pipeline):
    market = pipeline({"plugin": "bybit", "dataset": "open_interest", "symbols": ["BTCUSDT"], "start": "2024-01-01",
                       "base_url": bybit.url, "period": "5m"})

    result = market.run()

    assert result.exit_code == 2
    assert "needs a perpetual-futures market: set market to 'linear' or 'inverse'" in result.stderr
    assert not bybit.requests


def test_no_request_is_sent_for_the_years_before_a_listing(bybit, pipeline, fast):
    from fixtures.fake_bybit import LISTED

    market = pipeline(ohlcv(bybit, ["BTCUSDT"], fast, timeframes=["1h"], start="2015-01-01"))

    result = market.backfill("2015-01-01", iso(LISTED + 10 * DAY))

    assert result.exit_code == 0, result
    assert min(int(r.query["start"]) for r in bybit.requests_to("/v5/market/kline")) == LISTED
    assert len(market.rows("ohlcv", "BTCUSDT", ("ts",))) == 240


def _get(path, **query):
    from etl.testing import Request

    return Request("GET", path, {key: str(value) for key, value in query.items()}, {}, b"")


def test_the_request_limit_bybit_reports_paces_the_backfill(backfill_exactly, fast, log_events):
    """Bybit reports its limit and what is left of it on every answer (X-Bapi-Limit, X-Bapi-Limit-Status): a
    limit far below the documented 600 per 5 seconds is kept without the 403 that bans the address."""
    from fixtures.fake_bybit import FakeBybit

    with FakeBybit(requests_per_5s=20) as bybit:
        bybit.window.charge(8)  # another client of the address, just before the run
        result = backfill_exactly(ohlcv(bybit, ["BTCUSDT", "ETHUSDT"], fast), KLINE_COLUMNS, lambda symbol, start,
                                  end: bybit.expected_klines(symbol, "linear", "1", start, end), "2024-01-01",
                                  "2024-01-09")

    assert bybit.statuses[403] == 0
    assert bybit.window.total == 8 + 3 + 2 * 12 > 20, "more requests than one window allows"
    [adopted] = log_events(result.stderr, "pacing by the advertised request limit")
    assert adopted["limit"] == "20 per 5s"
