"""The ``hyperliquid`` REST source against a local /info speaking the recorded wire format."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from hyperliquid_helpers import etl, log_events, pipeline_file, stored

from etl.testing import Reply
from etl.timeframes import DAY, HOUR, floor_ts, iso, now_ms, parse_time
from fixtures.fake_hyperliquid import CANDLE_HORIZON, DESERIALIZE, HERE, FakeHyperliquid

RECORDED_NOW = 1_684_784_807_000  # the endTime of the recorded candleSnapshot request


def candle_rows(candles: list[dict]) -> pl.DataFrame:
    """What must land for these wire rows: strings parsed exactly as Python parses them."""
    return pl.DataFrame(
        {
            "ts": [row["t"] for row in candles],
            "open": [float(row["o"]) for row in candles],
            "high": [float(row["h"]) for row in candles],
            "low": [float(row["l"]) for row in candles],
            "close": [float(row["c"]) for row in candles],
            "volume": [float(row["v"]) for row in candles],
            "trades": [row["n"] for row in candles],
        }
    )


def daily(fake: FakeHyperliquid, symbols: list[str], days: int) -> dict:
    """A source table for daily candles of ``symbols`` over the last ``days`` closed days."""
    return {"plugin": "hyperliquid", "symbols": symbols, "timeframes": ["1d"], "base_url": fake.url,
            "start": iso(floor_ts(now_ms(), "1d") - days * DAY)}


def landed_candles(folder: Path, symbol: str | None = None) -> pl.DataFrame:
    rows = stored(folder, "ohlcv")
    if symbol is not None:
        rows = rows.filter(pl.col("symbol") == symbol)
    return rows.select(pl.col("ts").dt.epoch("ms"), "open", "high", "low", "close", "volume", "trades")


def test_recorded_candles_land_exactly(tmp_path: Path) -> None:
    recorded = json.loads((HERE / "hyperliquid_candleSnapshot.json").read_text())
    recorded_request = json.loads((HERE / "hyperliquid_candleSnapshot.request.json").read_text())
    with FakeHyperliquid(now_ms=RECORDED_NOW) as fake:
        path = pipeline_file(tmp_path, {"plugin": "hyperliquid", "symbols": ["kPEPE"], "timeframes": ["1h"],
                                        "start": "2023-05-21T20:00:00Z", "end": "2023-05-22T19:00:00Z",
                                        "base_url": fake.url})
        run = etl("run", str(path))
        bodies = fake.bodies()
    assert run.exit_code == 0, run
    landed = landed_candles(tmp_path)
    assert landed.equals(candle_rows(recorded[:23])), landed
    assert stored(tmp_path, "ohlcv")["symbol"].unique().to_list() == ["kPEPE"]
    assert len(bodies) == 1
    assert bodies[0].keys() == recorded_request.keys() and bodies[0]["req"].keys() == recorded_request["req"].keys()
    assert bodies[0]["req"] == {"coin": "kPEPE", "interval": "1h", "startTime": parse_time("2023-05-21T20:00:00Z"),
                                "endTime": parse_time("2023-05-22T19:00:00Z") - 1}
    assert not log_events(run, "hyperliquid candles older than the API keeps")


def test_candles_are_paged_by_time_and_weighted_per_60_returned(tmp_path: Path) -> None:
    with FakeHyperliquid(candle_cap=500) as fake:
        start = floor_ts(now_ms(), "1h") - 1200 * HOUR
        path = pipeline_file(tmp_path, {"plugin": "hyperliquid", "symbols": ["ETH"], "timeframes": ["1h"],
                                        "start": iso(start), "base_url": fake.url})
        run = etl("run", str(path))
        bodies = fake.bodies("candleSnapshot")
    assert run.exit_code == 0, run
    landed = landed_candles(tmp_path)
    end = int(landed["ts"][-1]) + HOUR
    expected = [fake.candle("ETH", "1h", t) for t in range(start, end, HOUR)]
    assert landed.equals(candle_rows(expected))
    assert end >= floor_ts(now_ms(), "1h") - HOUR, "every closed candle up to now landed"
    starts = [body["req"]["startTime"] for body in bodies]
    assert starts[:3] == [start, start + 500 * HOUR, start + 1000 * HOUR], "each page starts after the last row"
    weights = [record["weight"] for record in log_events(run, "hyperliquid info")]
    assert weights[:2] == [20 + 500 // 60, 20 + 500 // 60]
    assert not log_events(run, "hyperliquid candles older than the API keeps")


def test_a_window_older_than_the_horizon_warns_with_the_earliest_candle(tmp_path: Path, fake_hl) -> None:
    source = {"plugin": "hyperliquid", "symbols": ["ETH"], "timeframes": ["1h"], "base_url": fake_hl.url}
    path = pipeline_file(tmp_path, {**source, "start": "2020-01-01"})
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    (warning,) = log_events(run, "hyperliquid candles older than the API keeps")
    landed = landed_candles(tmp_path)
    earliest = int(landed["ts"][0])
    newest = floor_ts(fake_hl.now(), "1h")  # one hour later if the clock passed an hour during the run
    assert earliest in (newest - (CANDLE_HORIZON - 1) * HOUR, newest - CANDLE_HORIZON * HOUR)
    assert warning["coin"] == "ETH" and warning["interval"] == "1h"
    assert warning["requested_from"] == "2020-01-01T00:00:00Z"
    assert warning["earliest_available"] == iso(earliest)
    assert landed["ts"].diff().drop_nulls().unique().to_list() == [HOUR], "no hole after the horizon"
    assert f"candles beyond horizon: {(earliest - parse_time('2020-01-01')) // HOUR:,}" in run.summary

    old = pipeline_file(tmp_path / "old", {**source, "start": "2020-01-01", "end": "2020-02-01"})
    sent = len(fake_hl.bodies("candleSnapshot"))
    run = etl("run", str(old))
    assert run.exit_code == 0, run
    (warning,) = log_events(run, "hyperliquid candles older than the API keeps")
    assert warning["earliest_available"] == iso(earliest)
    assert ", 0 rows," in run.summary and "candles beyond horizon: 744" in run.summary  # all of January
    window, probe = fake_hl.bodies("candleSnapshot")[sent:]
    assert window["req"]["endTime"] == parse_time("2020-02-01") - 1
    assert probe["req"]["startTime"] == parse_time("2020-01-01") and probe["req"]["endTime"] > earliest
    assert [body["type"] for body in fake_hl.bodies()[-2:]] == ["spotMeta", "candleSnapshot"], (
        "an empty answer is checked against the listed coins before the probe")


def test_funding_is_paged_by_time_with_premium(tmp_path: Path, fake_hl) -> None:
    start, end = parse_time("2023-05-12"), parse_time("2023-07-15")
    path = pipeline_file(tmp_path, {"plugin": "hyperliquid", "dataset": "funding", "symbols": ["BTC"],
                                    "start": "2023-05-12", "end": "2023-07-15", "base_url": fake_hl.url})
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    expected_rows = fake_hl.funding_rows("BTC", start, end - 1)
    assert len(expected_rows) > 1000, "the window needs several 500-row pages"
    expected = pl.DataFrame({
        "ts": [row["time"] for row in expected_rows],
        "funding_rate": [float(row["fundingRate"]) for row in expected_rows],
        "premium": [float(row["premium"]) for row in expected_rows],
    })
    landed = stored(tmp_path, "funding").select(pl.col("ts").dt.epoch("ms"), "funding_rate", "premium")
    assert landed.equals(expected)
    recorded = json.loads((HERE / "hyperliquid_fundingHistory.json").read_text())
    assert landed.head(len(recorded))["funding_rate"].to_list() == [float(r["fundingRate"]) for r in recorded]
    bodies = fake_hl.bodies("fundingHistory")
    assert [body["startTime"] for body in bodies[:3]] == [
        start, expected_rows[499]["time"] + 1, expected_rows[999]["time"] + 1]
    weights = [record["weight"] for record in log_events(run, "hyperliquid info")]
    assert weights[0] == 20 + 500 // 20


def test_spot_pairs_are_named_by_pair(tmp_path: Path, fake_hl) -> None:
    path = pipeline_file(tmp_path, daily(fake_hl, ["PURR/USDC", "@107"], 10))
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    for symbol in ("PURR/USDC", "@107"):
        landed = landed_candles(tmp_path, symbol)
        assert landed.height == 10
        assert landed.equals(candle_rows([fake_hl.candle(symbol, "1d", int(t)) for t in landed["ts"]]))
    assert {body["req"]["coin"] for body in fake_hl.bodies("candleSnapshot")} == {"PURR/USDC", "@107"}


def test_funding_of_a_spot_pair_is_a_configuration_error(tmp_path: Path, fake_hl) -> None:
    path = pipeline_file(tmp_path, {"plugin": "hyperliquid", "dataset": "funding", "symbols": ["BTC", "PURR/USDC"],
                                    "start": "2024-01-01", "base_url": fake_hl.url})
    run = etl("run", str(path))
    assert run.exit_code == 2
    assert "'PURR/USDC' is a spot pair" in run.stderr
    assert not fake_hl.server.requests


@pytest.mark.parametrize(("key", "value", "message"), [
    ("timeframes", ["6h"], "Invalid timeframe '6h'"),
    ("weight_per_minute", 0, "must be positive"),
    ("attempts", 0, "must be positive"),
])
def test_bad_options_are_configuration_errors(tmp_path: Path, fake_hl, key: str, value: object,
                                              message: str) -> None:
    source = {"plugin": "hyperliquid", "symbols": ["BTC"], "timeframes": ["1h"], "start": "2024-01-01",
              "base_url": fake_hl.url, key: value}
    run = etl("validate", str(pipeline_file(tmp_path, source)))
    assert run.exit_code == 2
    assert message in run.stderr and key in run.stderr


def test_a_422_fails_its_stream_at_once_and_the_others_land(tmp_path: Path, fake_hl) -> None:
    fake_hl.fail_next(Reply.text(f"{DESERIALIZE}: missing field `endTime` at line 1 column 80", 422))
    path = pipeline_file(tmp_path, daily(fake_hl, ["ETH", "BTC"], 5), concurrency=1)
    run = etl("run", str(path))
    assert run.exit_code == 1, run
    assert "FAILED hl ohlcv/ETH/1d: hyperliquid ETH:" in run.stdout
    assert f"HTTP 422: {DESERIALIZE}: missing field `endTime`" in run.stdout
    coins = [body["req"]["coin"] for body in fake_hl.bodies("candleSnapshot")]
    assert coins.count("ETH") == 1, "a permanent error is not retried"
    assert stored(tmp_path, "ohlcv")["symbol"].unique().to_list() == ["BTC"]


def test_500_null_and_429_are_retried(tmp_path: Path, fake_hl) -> None:
    fake_hl.fail_next(Reply(500, b"null", {"Content-Type": "application/json"}), Reply.text("null", 429))
    source = daily(fake_hl, ["ETH"], 5)
    start = parse_time(source["start"])
    path = pipeline_file(tmp_path, source)
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    landed = landed_candles(tmp_path)
    assert landed.equals(candle_rows([fake_hl.candle("ETH", "1d", start + day * DAY) for day in range(5)]))
    assert len(fake_hl.bodies("candleSnapshot")) == 3


@pytest.mark.parametrize("answer", ["empty", "null500"])
def test_an_unknown_coin_fails_its_stream(tmp_path: Path, answer: str) -> None:
    """Whether Hyperliquid answers an unknown coin with [] or with 500 null is not recorded: both are named."""
    with FakeHyperliquid(unknown_coin=answer) as fake:
        path = pipeline_file(tmp_path, {**daily(fake, ["ETH", "NOPE"], 3), "attempts": 2})
        run = etl("run", str(path))
        coins = [body["req"]["coin"] for body in fake.bodies("candleSnapshot")]
    assert run.exit_code == 1, run
    assert "FAILED hl ohlcv/NOPE/1d: hyperliquid NOPE: unknown coin 'NOPE'" in run.stdout
    assert stored(tmp_path, "ohlcv")["symbol"].unique().to_list() == ["ETH"]
    assert coins.count("NOPE") == (1 if answer == "empty" else 2), "a 500 is retried, up to attempts"


def test_an_answer_that_does_not_move_forward_fails_instead_of_paging_forever(tmp_path: Path, fake_hl) -> None:
    source = daily(fake_hl, ["ETH"], 5)
    stale = fake_hl.candle("ETH", "1d", parse_time(source["start"]) - 30 * DAY)
    fake_hl.fail_next(Reply.json([stale]))
    run = etl("run", str(pipeline_file(tmp_path, source)))
    assert run.exit_code == 1, run
    assert "FAILED hl ohlcv/ETH/1d: hyperliquid ETH: candleSnapshot answered startTime" in run.stdout
    assert "paging cannot advance" in run.stdout
    assert len(fake_hl.bodies("candleSnapshot")) == 1
