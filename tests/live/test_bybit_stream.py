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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import etl
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
    stored,
    stream_for,
)

SYMBOLS = {"spot": ["BTCUSDT", "ETHUSDT"], "linear": ["BTCUSDT", "ETHUSDT"], "inverse": ["BTCUSD", "ETHUSD"]}


@pytest.fixture
def bybit(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Venue]]:
    """The venue, seen through a pipeline of one market."""
    from fixtures.fake_bybit import FakeBybit
    from fixtures.fake_bybit_ws import FakeBybitWebsocket

    accelerate_clock(monkeypatch)
    with FakeBybit(inverse=("BTCUSD", "ETHUSD")) as rest, FakeBybitWebsocket(rest) as ws:

        def market(name: str) -> Venue:
            def pipeline(folder: Path, start: int, **source: Any) -> Path:
                config = {"plugin": "bybit", "market": name, "symbols": SYMBOLS[name], "timeframes": ["1m"],
                          "start": iso(start), "base_url": rest.url, "ws_url": f"{ws.url}/v5/public/{name}",
                          "retry_base_delay": 0.01, **source}
                return write_pipeline(folder, single_pipeline(config, SINKS, FEATURES, name="live"))

            return Venue(rest, ws, pipeline, SYMBOLS[name], MINUTE)

        yield market


@pytest.fixture
def venue(bybit: Callable[[str], Venue]) -> Venue:
    return bybit("linear")


@pytest.mark.parametrize("market", ["spot", "linear", "inverse"])
def test_stream_stores_confirmed_bars_equal_to_a_backfill_and_exits_on_sigterm(bybit: Callable[[str], Venue],
                                                                              tmp_path: Path, market: str) -> None:
    check_closed_bars_equal_a_backfill_and_sigterm_exits(bybit(market), tmp_path / "live")


def test_disconnects_repeats_late_and_garbage_frames_and_missing_bars_change_nothing(venue: Venue,
                                                                                    tmp_path: Path) -> None:
    check_faults_change_nothing(venue, tmp_path / "live")


def test_sigkill_mid_flight_then_a_restart_loses_nothing(venue: Venue, tmp_path: Path) -> None:
    check_sigkill_then_restart_loses_nothing(venue, tmp_path / "live")


def test_a_refused_topic_fails_its_stream_and_the_other_streams_on(venue: Venue, tmp_path: Path) -> None:
    venue.ws.reject_topics = {"kline.1.ETHUSDT"}
    check_one_stream_fails_and_the_others_stream_on(
        venue, tmp_path / "live", venue.pipeline(tmp_path / "live", venue.bars_ago(10)),
        "FAILED live ohlcv/ETHUSDT/1m: bybit refused the subscription: error:handler not found,topic:kline.1.ETHUSDT")


def test_an_unknown_symbol_fails_its_stream_and_the_other_streams_on(venue: Venue, tmp_path: Path) -> None:
    path = venue.pipeline(tmp_path / "live", venue.bars_ago(10))
    path.write_text(path.read_text().replace('"ETHUSDT"', '"ETHUSTD"'))
    check_one_stream_fails_and_the_others_stream_on(venue, tmp_path / "live", path, "FAILED live ohlcv/ETHUSTD/1m: ")


def test_a_refusal_that_mutes_the_other_topics_of_its_connection_still_lands_their_bars(venue: Venue,
                                                                                       tmp_path: Path) -> None:
    """Reported once, unconfirmed: after a refusal Bybit sends nothing more on that connection but pongs.
    The overdue heal brings the other streams' bars from REST."""
    venue.ws.reject_topics = {"kline.1.ETHUSDT"}
    venue.ws.mute_after_refusal = True
    start = venue.bars_ago(10)
    code, _, _, err = stream_for(venue.pipeline(tmp_path / "live", start), 6)

    assert code == 1, err
    assert venue.ws.closing_frames_sent == 0
    btc = stored(tmp_path / "live").filter(pl.col("symbol") == "BTCUSDT")
    assert btc.height >= 14
    end = int(btc["ts"].max().timestamp() * 1000) + 1
    expected = venue.rest.expected_klines("BTCUSDT", "linear", "1", start, end)
    assert btc.select("ts", "open", "high", "low", "close", "volume", "turnover").rows() == [
        (datetime.fromtimestamp(row[0] / 1000, UTC), *row[1:]) for row in expected]


def test_connections_carry_json_pings_and_subscribe_in_requests_of_ten_topics() -> None:
    from etl_bybit.live import subscriptions, websocket_url

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
