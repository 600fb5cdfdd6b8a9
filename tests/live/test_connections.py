"""``etl.live.Connections`` with a venue that wants application-level pings (Bybit's fake): the core sends the
subscription's JSON ping on schedule, and the venue's pongs keep a connection whose streams are quiet from
being taken for silent."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from etl.config import load
from etl.live import Connections, Listener
from etl.plugins import registry
from etl.testing import single_pipeline, write_pipeline
from etl.timeframes import iso, now_ms
from tests.live.harness import SINKS


def test_json_pings_go_out_on_schedule_and_pongs_keep_a_quiet_connection(tmp_path: Path) -> None:
    from fixtures.fake_bybit import FakeBybit
    from fixtures.fake_bybit_ws import FakeBybitWebsocket

    with FakeBybit() as rest, FakeBybitWebsocket(rest) as ws:
        config = {"plugin": "bybit", "market": "linear", "symbols": ["BTCUSDT"], "timeframes": ["1m"],
                  "start": iso(now_ms() - 3_600_000), "base_url": rest.url, "ws_url": f"{ws.url}/v5/public/linear"}
        (spec,) = load(write_pipeline(tmp_path, single_pipeline(config, SINKS))).pipelines.values()
        source = registry().get("source", "bybit")(spec.source)
        (subscription,) = source.subscriptions(source.streams())
        quick = dataclasses.replace(subscription, ping_seconds=0.2, silence_seconds=1.0)
        connected: list[object] = []
        stop = threading.Event()
        connections = Connections(source, [quick], Listener(lambda *_: None, connected.append,
                                                            lambda *_: pytest.fail("nothing is refused")), stop)
        ws.stall(3)
        connections.start()
        time.sleep(2.5)
        stop.set()
        connections.join(3)

    assert ws.pings >= 8, "a ping every 0.2 s"
    assert len(connected) == 1 and ws.connections == 1, "no bar frame for 2.5 s, yet the pongs kept it up"
