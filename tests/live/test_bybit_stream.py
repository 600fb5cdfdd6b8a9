"""``etl stream`` against local fakes of Bybit's v5 REST API and public websocket, kline topics of spot, linear and
inverse markets.

Bybit's shortest kline is one minute, so these tests run on an accelerated clock: ``ETL_CLOCK`` makes
``etl.timeframes.now_ms`` run 60 times faster than the wall clock, in ``etl stream``, in the in-process backfill
that is the oracle, and in the fakes, which read the same function. A minute closes every second and the code
path is the real one (real ``1m`` topics, real REST windows). Accelerating the fakes alone would not be sound:
the core bounds its REST heals by its own clock and the source drops bars still open on the venue's clock
(measured once, as an offset from its own), so a venue clock racing ahead would have every healed bar taken
for open; one shared clock keeps them agreeing, as the real clocks do.

What it stores over a window must equal, row for row (features included), what ``etl backfill`` stores for
that window: no forming bar, no duplicate, nothing missing, whatever the connection did.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl.testing import single_pipeline, write_pipeline
from etl.timeframes import MINUTE, iso, now_ms
from tests.live.harness import FEATURES, SINKS, assert_equals_backfill, start_stream, stop, stored, stream_for

SYMBOLS = {"spot": ["BTCUSDT", "ETHUSDT"], "linear": ["BTCUSDT", "ETHUSDT"], "inverse": ["BTCUSD", "ETHUSD"]}


@pytest.fixture
def venue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    from fixtures.fake_bybit import FakeBybit
    from fixtures.fake_bybit_ws import FakeBybitWebsocket

    monkeypatch.setenv("ETL_CLOCK", f"60@{int(time.time() * 1000)}")
    with FakeBybit(inverse=("BTCUSD", "ETHUSD")) as rest, FakeBybitWebsocket(rest) as ws:
        yield rest, ws


def pipeline(folder: Path, rest: Any, ws: Any, start: int, market: str = "linear", **source: Any) -> Path:
    config = {"plugin": "bybit", "market": market, "symbols": SYMBOLS[market], "timeframes": ["1m"],
              "start": iso(start), "base_url": rest.url, "ws_url": f"{ws.url}/v5/public/{market}",
              "retry_base_delay": 0.01, **source}
    return write_pipeline(folder, single_pipeline(config, SINKS, FEATURES, name="live"))


def minutes_ago(minutes: int) -> int:
    return now_ms() // MINUTE * MINUTE - minutes * MINUTE


def assert_equals_backfill_of(folder: Path, rest: Any, ws: Any, start: int, market: str = "linear") -> pl.DataFrame:
    return assert_equals_backfill(folder, lambda where, begin: pipeline(where, rest, ws, begin, market), start,
                                  SYMBOLS[market], MINUTE)


@pytest.mark.parametrize("market", ["spot", "linear", "inverse"])
def test_stream_stores_confirmed_bars_equal_to_a_backfill_and_exits_on_sigterm(venue, tmp_path: Path,
                                                                              market: str) -> None:
    rest, ws = venue
    start = minutes_ago(60)
    code, took, out, err = stream_for(pipeline(tmp_path / "live", rest, ws, start, market), 6)

    assert code == 0, err
    assert took < 5
    assert out.strip().splitlines()[-1].startswith("etl stream ok: 2 streams")
    live = assert_equals_backfill_of(tmp_path / "live", rest, ws, start, market)
    for symbol in SYMBOLS[market]:
        assert live.filter(pl.col("symbol") == symbol).height >= 62, "the heal's hour and the minutes streamed after"
    assert ws.closing_frames_sent >= 8
    assert '"event": "live connected"' in err


def test_disconnects_repeats_late_and_garbage_frames_and_missing_bars_change_nothing(venue, tmp_path: Path) -> None:
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


def test_sigkill_mid_flight_then_a_restart_loses_nothing(venue, tmp_path: Path) -> None:
    rest, ws = venue
    start = minutes_ago(30)
    path = pipeline(tmp_path / "live", rest, ws, start)
    assert stream_for(path, 4, signal.SIGKILL)[0] == -signal.SIGKILL
    time.sleep(2)
    code, _, _, err = stream_for(path, 4)
    assert code == 0, err
    assert_equals_backfill_of(tmp_path / "live", rest, ws, start)


def test_connections_carry_json_pings_and_subscribe_in_requests_of_ten_topics() -> None:
    from etl_bybit.live import subscriptions, websocket_url

    import etl

    streams = [etl.Stream("ohlcv", f"COIN{index}USDT", "1m") for index in range(205)]
    found = subscriptions({"base_url": "http://127.0.0.1:8080/"}, "spot", streams)

    assert [len(subscription.streams) for subscription in found] == [200, 5]
    assert found[0].url == "ws://127.0.0.1:8080/v5/public/spot"
    assert found[0].ping == '{"op": "ping"}' and found[0].ping_seconds == 20
    requests = [json.loads(message) for message in found[0].messages]
    assert len(requests) == 20 and all(len(request["args"]) == 10 for request in requests)
    assert requests[0]["args"][0] == "kline.1.COIN0USDT"
    assert websocket_url({}, "inverse") == "wss://stream.bybit.com/v5/public/inverse"
    assert websocket_url({"ws_url": "ws://proxy/x", "base_url": "http://h"}, "linear") == "ws://proxy/x"


def test_a_refused_topic_fails_its_stream_and_the_other_streams_on(venue, tmp_path: Path) -> None:
    rest, ws = venue
    ws.reject_topics = {"kline.1.ETHUSDT"}
    code, _, out, err = stream_for(pipeline(tmp_path / "live", rest, ws, minutes_ago(10)), 4)

    assert code == 1, err
    assert ("FAILED live ohlcv/ETHUSDT/1m: bybit refused the subscription: "
            "error:handler not found,topic:kline.1.ETHUSDT") in out
    assert stored(tmp_path / "live").filter(pl.col("symbol") == "BTCUSDT").height >= 12


def test_a_refusal_that_mutes_the_other_topics_of_its_connection_still_lands_their_bars(venue,
                                                                                       tmp_path: Path) -> None:
    """Reported once, unconfirmed: after a refusal Bybit sends nothing more on that connection but pongs.
    The overdue heal brings the other streams' bars from REST."""
    rest, ws = venue
    ws.reject_topics = {"kline.1.ETHUSDT"}
    ws.mute_after_refusal = True
    start = minutes_ago(10)
    code, _, _, err = stream_for(pipeline(tmp_path / "live", rest, ws, start), 6)

    assert code == 1, err
    assert ws.closing_frames_sent == 0
    btc = stored(tmp_path / "live").filter(pl.col("symbol") == "BTCUSDT")
    assert btc.height >= 14
    expected = rest.expected_klines("BTCUSDT", "linear", "1", start, int(btc["ts"].max().timestamp() * 1000) + 1)
    assert btc.select("ts", "open", "high", "low", "close", "volume", "turnover").rows() == [
        (datetime.fromtimestamp(row[0] / 1000, UTC), *row[1:]) for row in expected]


def test_an_unknown_symbol_fails_its_stream_and_the_other_streams_on(venue, tmp_path: Path) -> None:
    rest, ws = venue
    path = pipeline(tmp_path / "live", rest, ws, minutes_ago(10))
    path.write_text(path.read_text().replace('"ETHUSDT"', '"ETHUSTD"'))
    code, _, out, err = stream_for(path, 4)

    assert code == 1, err
    assert "FAILED live ohlcv/ETHUSTD/1m: " in out
    assert stored(tmp_path / "live").filter(pl.col("symbol") == "BTCUSDT").height >= 12
