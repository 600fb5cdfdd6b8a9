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
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import etl
from etl.live import LiveRejected
from etl.testing import single_pipeline, write_pipeline
from etl.timeframes import MINUTE, iso, now_ms
from tests.live.harness import FEATURES, SINKS, assert_equals_backfill, start_stream, stop, stored, stream_for

SYMBOLS = ["BTC", "ETH"]
# A forming candle and the next one, as Hyperliquid sent them (wire-samples/hyperliquid_ws_candle_rollover).
ROLLOVER = [
    '{"channel":"candle","data":{"t":1790358600000,"T":1790358659999,"s":"BTC","i":"1m","o":"83765.0",'
    '"c":"83765.0","h":"83770.0","l":"83756.0","v":"0.3317","n":36}}',
    '{"channel":"candle","data":{"t":1790358660000,"T":1790358719999,"s":"BTC","i":"1m","o":"83765.0",'
    '"c":"83801.0","h":"83805.0","l":"83760.0","v":"1.2044","n":88}}',
]


@pytest.fixture
def venue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    from fixtures.fake_hyperliquid import FakeHyperliquid
    from fixtures.fake_hyperliquid_ws import FakeHyperliquidWebsocket

    monkeypatch.setenv("ETL_CLOCK", f"60@{int(time.time() * 1000)}")
    with FakeHyperliquid() as rest, FakeHyperliquidWebsocket(rest) as ws:
        yield rest, ws


def pipeline(folder: Path, rest: Any, ws: Any, start: int, **source: Any) -> Path:
    config = {"plugin": "hyperliquid", "symbols": SYMBOLS, "timeframes": ["1m"], "start": iso(start),
              "base_url": rest.url, "ws_url": f"{ws.url}/ws", "weight_per_minute": 100_000, **source}
    return write_pipeline(folder, single_pipeline(config, SINKS, FEATURES, name="live"))


def minutes_ago(minutes: int) -> int:
    return now_ms() // MINUTE * MINUTE - minutes * MINUTE


def assert_equals_backfill_of(folder: Path, rest: Any, ws: Any, start: int) -> pl.DataFrame:
    return assert_equals_backfill(folder, lambda where, begin: pipeline(where, rest, ws, begin), start, SYMBOLS,
                                  MINUTE)


def test_stream_stores_candles_closed_by_the_next_one_equal_to_a_backfill(venue, tmp_path: Path) -> None:
    rest, ws = venue
    start = minutes_ago(60)
    code, took, out, err = stream_for(pipeline(tmp_path / "live", rest, ws, start), 6)

    assert code == 0, err
    assert took < 5
    assert out.strip().splitlines()[-1].startswith("etl stream ok: 2 streams")
    live = assert_equals_backfill_of(tmp_path / "live", rest, ws, start)
    for symbol in SYMBOLS:
        assert live.filter(pl.col("symbol") == symbol).height >= 62, "the heal's hour and the minutes streamed after"
    assert ws.closing_frames_sent >= 8
    assert '"event": "live connected"' in err


def test_disconnects_repeats_late_and_garbage_frames_and_missing_candles_change_nothing(venue,
                                                                                       tmp_path: Path) -> None:
    rest, ws = venue
    start = minutes_ago(20)
    soon = start + 26 * MINUTE
    rest.missing_bars = {soon, soon + MINUTE, start + 5 * MINUTE}
    ws.repeat_closing = ws.late_closing = ws.garbage = True
    ws.drop(2)
    path = pipeline(tmp_path / "live", rest, ws, start, ws_silence=1.5)
    process = start_stream(path)
    time.sleep(5)
    ws.stall(3)
    time.sleep(6)
    code, _, _, err = stop(process)

    assert code == 0, err
    assert ws.connections >= 4, "two dropped connections and a silent one were replaced"
    assert "no frame for 1.5s: replacing the connection" in err
    assert "connection dropped without a close frame" in err
    assert '"event": "live frame unreadable"' in err
    assert err.count('"event": "live heal"') >= 3
    assert_equals_backfill_of(tmp_path / "live", rest, ws, start)


def test_a_coin_falling_quiet_still_lands_its_last_candle_from_rest(venue, tmp_path: Path) -> None:
    """No later candle comes to close the last one: the core heals the overdue bar from REST."""
    rest, ws = venue
    start = minutes_ago(10)
    quiet_from = minutes_ago(-2)
    rest.missing_bars = set(range(quiet_from, quiet_from + 600 * MINUTE, MINUTE))
    code, _, _, err = stream_for(pipeline(tmp_path / "live", rest, ws, start), 6)

    assert code == 0, err
    live = assert_equals_backfill_of(tmp_path / "live", rest, ws, start)
    for symbol in SYMBOLS:
        last = live.filter(pl.col("symbol") == symbol)["ts"].max()
        assert int(last.timestamp() * 1000) == quiet_from - MINUTE


def test_sigkill_mid_flight_then_a_restart_loses_nothing(venue, tmp_path: Path) -> None:
    rest, ws = venue
    start = minutes_ago(30)
    path = pipeline(tmp_path / "live", rest, ws, start)
    assert stream_for(path, 4, signal.SIGKILL)[0] == -signal.SIGKILL
    time.sleep(2)
    code, _, _, err = stream_for(path, 4)
    assert code == 0, err
    assert_equals_backfill_of(tmp_path / "live", rest, ws, start)


def test_a_refused_subscription_fails_its_stream_and_the_other_streams_on(venue, tmp_path: Path) -> None:
    rest, ws = venue
    ws.reject_coins = {"ETH"}
    code, _, out, err = stream_for(pipeline(tmp_path / "live", rest, ws, minutes_ago(10)), 4)

    assert code == 1, err
    assert ('FAILED live ohlcv/ETH/1m: hyperliquid refused the subscription: Invalid subscription '
            '{"type": "candle", "coin": "ETH", "interval": "1m"}') in out
    assert stored(tmp_path / "live").filter(pl.col("symbol") == "BTC").height >= 12


def test_an_unknown_coin_fails_its_stream_and_the_other_streams_on(venue, tmp_path: Path) -> None:
    rest, ws = venue
    path = pipeline(tmp_path / "live", rest, ws, minutes_ago(10))
    path.write_text(path.read_text().replace('"ETH"', '"ETHX"'))
    code, _, out, err = stream_for(path, 4)

    assert code == 1, err
    assert "FAILED live ohlcv/ETHX/1m: " in out
    assert stored(tmp_path / "live").filter(pl.col("symbol") == "BTC").height >= 12


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
    with pytest.raises(LiveRejected):
        closer.parse('{"channel":"error","data":"Invalid subscription {\\"type\\":\\"candle\\",\\"coin\\":\\"BTC\\",'
                     '\\"interval\\":\\"1m\\"}"}', subscription)
    assert list(closer.parse('{"channel":"pong"}', subscription)) == []
