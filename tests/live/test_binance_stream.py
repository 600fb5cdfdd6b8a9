"""``etl stream`` against local fakes of Binance's REST API and websocket streams, with 1-second klines so a
test sees dozens of bars close in seconds.

What it stores over a window must equal, row for row (features included), what ``etl backfill`` stores for
that window: no forming bar, no duplicate, nothing missing, whatever the connection did.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl.testing import single_pipeline, write_pipeline
from etl.timeframes import iso, now_ms
from tests.live.harness import FEATURES, SINKS, assert_equals_backfill, start_stream, stop, stored, stream_for

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def venue() -> Iterator[tuple[Any, Any]]:
    from fixtures.fake_binance import FakeBinance
    from fixtures.fake_binance_ws import FakeBinanceWebsocket

    with FakeBinance() as rest, FakeBinanceWebsocket(rest) as ws:
        yield rest, ws


def pipeline(folder: Path, rest: Any, ws: Any, start: int, **source: Any) -> Path:
    config = {"plugin": "binance", "symbols": SYMBOLS, "timeframes": ["1s"], "start": iso(start),
              "base_url": rest.url, "ws_url": ws.url, "retry_base_delay": 0.01, **source}
    return write_pipeline(folder, single_pipeline(config, SINKS, FEATURES, name="live"))


def seconds_ago(seconds: int) -> int:
    return now_ms() // 1000 * 1000 - seconds * 1000


def assert_equals_backfill_of(folder: Path, rest: Any, ws: Any, start: int) -> pl.DataFrame:
    return assert_equals_backfill(folder, lambda where, begin: pipeline(where, rest, ws, begin), start, SYMBOLS, 1000)


def test_stream_stores_closed_bars_equal_to_a_backfill_and_exits_on_sigterm(venue, tmp_path: Path) -> None:
    rest, ws = venue
    start = seconds_ago(60)
    code, took, out, err = stream_for(pipeline(tmp_path / "live", rest, ws, start), 6)

    assert code == 0, err
    assert took < 5
    assert out.strip().splitlines()[-1].startswith("etl stream ok: 2 streams")
    live = assert_equals_backfill_of(tmp_path / "live", rest, ws, start)
    for symbol in SYMBOLS:
        rows = live.filter(pl.col("symbol") == symbol)
        assert rows.height >= 62, "the heal's minute and the seconds streamed after it"
    assert ws.closing_frames_sent >= 8
    assert '"event": "live connected"' in err


def test_disconnects_repeats_late_and_garbage_frames_and_missing_bars_change_nothing(venue, tmp_path: Path) -> None:
    rest, ws = venue
    start = seconds_ago(20)
    soon = start + 26_000
    rest.missing_bars = {soon, soon + 1000, start + 5_000}
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
    start = seconds_ago(30)
    path = pipeline(tmp_path / "live", rest, ws, start)
    assert stream_for(path, 4, signal.SIGKILL)[0] == -signal.SIGKILL
    time.sleep(2)
    code, _, _, err = stream_for(path, 4)
    assert code == 0, err
    assert_equals_backfill_of(tmp_path / "live", rest, ws, start)


def test_an_unknown_symbol_fails_its_stream_and_the_other_streams_on(venue, tmp_path: Path) -> None:
    rest, ws = venue
    path = pipeline(tmp_path / "live", rest, ws, seconds_ago(10))
    path.write_text(path.read_text().replace('"ETHUSDT"', '"ETHUSTD"'))
    code, _, out, err = stream_for(path, 4)

    assert code == 1, err
    assert "FAILED live ohlcv/ETHUSTD/1s: binance: unknown symbol 'ETHUSTD'" in out
    assert stored(tmp_path / "live").filter(pl.col("symbol") == "BTCUSDT").height >= 12
