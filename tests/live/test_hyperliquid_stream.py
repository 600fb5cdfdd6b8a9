"""``etl stream`` against local fakes of Hyperliquid's ``POST /info`` and websocket ``candle`` subscriptions.

Hyperliquid's shortest candle is one minute, so these tests run on the accelerated clock ``ETL_CLOCK`` (60 times
the wall clock) that ``etl stream``, the oracle backfill and the fakes all read; see ``test_bybit_stream`` for why
one shared clock, not a fast fake alone, keeps the test sound.

Candle frames carry no closed flag and the fake's forming frames hold partial values, so a candle stored
before its last frame would differ from the backfill: what the stream stores over a window must equal, row
for row (features included), what ``etl backfill`` stores for that window, whatever the connection did.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import etl
from etl.live import LiveRejected
from etl.testing import single_pipeline, write_pipeline
from etl.timeframes import MINUTE, iso
from tests.live.harness import (
    FEATURES,
    SINKS,
    Venue,
    accelerate_clock,
    check_closed_bars_equal_a_backfill_and_sigterm_exits,
    check_faults_change_nothing,
    check_one_stream_fails_and_the_others_stream_on,
    check_sigkill_then_restart_loses_nothing,
    stream_for,
)

SYMBOLS = ["BTC", "ETH"]
# A forming candle and the next one, as Hyperliquid sent them (wire-samples/hyperliquid_ws_candle_rollover).
ROLLOVER = [
    '{"channel":"candle","data":{"t":1790358600000,"T":1790358659999,"s":"BTC","i":"1m","o":"83765.0",'
    '"c":"83765.0","h":"83770.0","l":"83756.0","v":"0.3317","n":36}}',
    '{"channel":"candle","data":{"t":1790358660000,"T":1790358719999,"s":"BTC","i":"1m","o":"83765.0",'
    '"c":"83801.0","h":"83805.0","l":"83760.0","v":"1.2044","n":88}}',
]


@pytest.fixture
def venue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Venue]:
    from fixtures.fake_hyperliquid import FakeHyperliquid
    from fixtures.fake_hyperliquid_ws import FakeHyperliquidWebsocket

    accelerate_clock(monkeypatch)
    with FakeHyperliquid() as rest, FakeHyperliquidWebsocket(rest) as ws:

        def pipeline(folder: Path, start: int, **source: Any) -> Path:
            config = {"plugin": "hyperliquid", "symbols": SYMBOLS, "timeframes": ["1m"], "start": iso(start),
                      "base_url": rest.url, "ws_url": f"{ws.url}/ws", "weight_per_minute": 100_000, **source}
            return write_pipeline(folder, single_pipeline(config, SINKS, FEATURES, name="live"))

        yield Venue(rest, ws, pipeline, SYMBOLS, MINUTE)


def test_stream_stores_candles_closed_by_the_next_one_equal_to_a_backfill(venue: Venue, tmp_path: Path) -> None:
    check_closed_bars_equal_a_backfill_and_sigterm_exits(venue, tmp_path / "live")


def test_disconnects_repeats_late_and_garbage_frames_and_missing_candles_change_nothing(venue: Venue,
                                                                                       tmp_path: Path) -> None:
    check_faults_change_nothing(venue, tmp_path / "live")


def test_sigkill_mid_flight_then_a_restart_loses_nothing(venue: Venue, tmp_path: Path) -> None:
    check_sigkill_then_restart_loses_nothing(venue, tmp_path / "live")


def test_a_coin_falling_quiet_still_lands_its_last_candle_from_rest(venue: Venue, tmp_path: Path) -> None:
    """No later candle comes to close the last one: the core heals the overdue bar from REST."""
    start, quiet_from = venue.bars_ago(10), venue.bars_ago(-2)
    venue.rest.missing_bars = set(range(quiet_from, quiet_from + 600 * MINUTE, MINUTE))
    code, _, _, err = stream_for(venue.pipeline(tmp_path / "live", start), 6)

    assert code == 0, err
    live = venue.assert_equals_backfill(tmp_path / "live", start)
    for symbol in SYMBOLS:
        last = live.filter(pl.col("symbol") == symbol)["ts"].max()
        assert int(last.timestamp() * 1000) == quiet_from - MINUTE


def test_a_refused_subscription_fails_its_stream_and_the_other_streams_on(venue: Venue, tmp_path: Path) -> None:
    venue.ws.reject_coins = {"ETH"}
    check_one_stream_fails_and_the_others_stream_on(
        venue, tmp_path / "live", venue.pipeline(tmp_path / "live", venue.bars_ago(10)),
        'FAILED live ohlcv/ETH/1m: hyperliquid refused the subscription: Invalid subscription '
        '{"type": "candle", "coin": "ETH", "interval": "1m"}')


def test_an_unknown_coin_fails_its_stream_and_the_other_streams_on(venue: Venue, tmp_path: Path) -> None:
    path = venue.pipeline(tmp_path / "live", venue.bars_ago(10))
    path.write_text(path.read_text().replace('"ETH"', '"ETHX"'))
    check_one_stream_fails_and_the_others_stream_on(venue, tmp_path / "live", path,
                                                    "FAILED live ohlcv/ETHX/1m: hyperliquid")


def test_the_next_candle_closes_the_last_one_and_a_new_connection_forgets_it() -> None:
    from etl_hyperliquid.live import CandleCloser, subscriptions

    stream = etl.Stream("ohlcv", "BTC", "1m")
    subscription = subscriptions({"base_url": "https://api.example"}, [stream])[0]
    closer = CandleCloser()
    ack = json.dumps({"channel": "subscriptionResponse",
                      "data": {"method": "subscribe", "subscription": {"type": "candle", "coin": "BTC",
                                                                         "interval": "1m"}}})

    assert subscription.url == "wss://api.example/ws" and subscription.ping == '{"method": "ping"}'
    assert list(closer.parse(ROLLOVER[0], subscription)) == []
    closed = list(closer.parse(ROLLOVER[1], subscription))
    assert [(got, frame.row(0)) for got, frame in closed] == [
        (stream, (1790358600000, 83765.0, 83770.0, 83756.0, 83765.0, 0.3317, 36))]
    assert list(closer.parse(ROLLOVER[0], subscription)) == [], "a late frame of a closed candle"
    reconnected = CandleCloser()
    reconnected.parse(ROLLOVER[0], subscription)
    reconnected.parse(ack, subscription)
    assert list(reconnected.parse(ROLLOVER[1], subscription)) == [], "what a dropped connection saw is forgotten"
    reconnected.parse(ROLLOVER[0].replace("1790358600000", "1790358720000"), subscription)
    reconnected.parse(ack.replace('"coin": "BTC"', '"coin": "btc"'), subscription)
    assert list(reconnected.parse(ROLLOVER[1].replace("1790358660000", "1790358780000"), subscription)) == [], (
        "an ack naming no stream we know forgets every stream of its connection")
    with pytest.raises(LiveRejected):
        closer.parse('{"channel":"error","data":"Invalid subscription {\\"type\\":\\"candle\\",\\"coin\\":\\"BTC\\",'
                     '\\"interval\\":\\"1m\\"}"}', subscription)
    assert list(closer.parse('{"channel":"pong"}', subscription)) == []
