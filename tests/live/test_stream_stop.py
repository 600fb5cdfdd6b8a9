"""SIGTERM while ``etl stream`` waits on a venue slow to answer its start-up heals still exits 0 within 5 s
(DESIGN 9), with checkpoints that equal what the sink holds, and the next start heals the rest. (A stream waiting
for a DuckDB file another process holds: ``tests/sinks/test_sink_lock.py``.)"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl.testing import Reply, single_pipeline, write_pipeline
from etl.testing.server import Request
from etl.timeframes import iso
from fixtures.fake_binance import FakeBinance
from tests.live.harness import SINKS, Venue, checkpoint_mismatches, start_stream, stop, stream_for, wait_for

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
KLINES, MARKETS = "/api/v3/klines", "/api/v3/exchangeInfo"


class SlowBinance(FakeBinance):
    """Binance's REST fake answering the paths of ``slow`` only after their seconds (a venue under load)."""

    slow: dict[str, float] = {}

    def route(self, request: Request) -> Reply:
        reply = super().route(request)
        delay = self.slow.get(request.path)
        return Reply.timeout(delay, reply) if delay else reply


@pytest.fixture
def venue() -> Iterator[Venue]:
    from fixtures.fake_binance_ws import FakeBinanceWebsocket

    with SlowBinance(spot=tuple(SYMBOLS)) as rest, FakeBinanceWebsocket(rest) as ws:

        def pipeline(folder: Path, start: int, **source: Any) -> Path:
            config = {"plugin": "binance", "symbols": SYMBOLS, "timeframes": ["1s"], "start": iso(start),
                      "base_url": rest.url, "ws_url": ws.url, **source}
            return write_pipeline(folder, single_pipeline(config, SINKS, name="live", concurrency=1))

        yield Venue(rest, ws, pipeline, SYMBOLS, 1000)


@pytest.mark.parametrize(("delay", "abandoned"), [(0.5, False), (6.0, True)])
def test_sigterm_during_slow_heals_exits_in_time_and_the_next_start_heals_the_rest(
        venue: Venue, tmp_path: Path, delay: float, abandoned: bool) -> None:
    """One heal at a time (``concurrency`` 1), 3,000 bars a stream (3 pages), each page ``delay`` s late. At the
    stop no waiting heal starts, and the heal under way stops after its page in flight, its pages committed; a
    page later than the stop's 2 s is not waited for: its stream's checkpoint stays where its sink is."""
    rest: Any = venue.rest
    rest.slow = {KLINES: delay}
    start = venue.bars_ago(3000)
    path = venue.pipeline(tmp_path / "live", start)
    process = start_stream(path)
    wait_for(lambda: len(rest.requests_to(KLINES)) >= (1 if abandoned else 2), 30)
    time.sleep(delay / 2)
    code, took, out, err = stop(process)

    assert code == 0, err
    assert took < 5, err
    assert out.strip().splitlines()[-1].startswith(f"etl stream ok: {len(SYMBOLS)} streams"), out
    assert ('"event": "stream followers left busy at stop"' in err) is abandoned
    assert len(rest.requests_to(KLINES)) <= 3, "no heal began after the stop"
    assert checkpoint_mismatches(tmp_path / "live", "live", venue.step) == []

    rest.slow = {}
    code, _, _, err = stream_for(path, 5)
    assert code == 0, err
    assert checkpoint_mismatches(tmp_path / "live", "live", venue.step) == []
    venue.assert_equals_backfill(tmp_path / "live", start)



def test_sigterm_while_the_venue_is_slow_to_list_its_markets_exits_in_time(venue: Venue, tmp_path: Path) -> None:
    """The first heal loads the markets (``exchangeInfo``) under the ccxt client's lock, and every other heal waits
    for it; a stop meanwhile leaves them all behind, and closing the source must not wait for that lock."""
    rest: Any = venue.rest
    rest.slow = {MARKETS: 8.0}
    path = venue.pipeline(tmp_path / "live", venue.bars_ago(60))
    process = start_stream(path)
    wait_for(lambda: len(rest.requests_to(MARKETS)) >= 1, 30)
    time.sleep(1)
    code, took, out, err = stop(process)

    assert code == 0, err
    assert took < 5, err
    assert out.strip().splitlines()[-1].startswith(f"etl stream ok: {len(SYMBOLS)} streams, 0 rows"), out
    assert '"event": "stream followers left busy at stop"' in err
    assert checkpoint_mismatches(tmp_path / "live", "live", venue.step) == []


def test_sigterm_delivered_to_a_thread_other_than_the_main_one_still_stops_the_stream(venue: Venue,
                                                                                      tmp_path: Path) -> None:
    """The kernel may hand a process's SIGTERM to any of its threads (``kill`` of a thread's id picks that one);
    Python runs the handler on the main thread only when it next runs: the stream still stops, in time."""
    path = venue.pipeline(tmp_path / "live", venue.bars_ago(60))
    process = start_stream(path)
    wait_for(lambda: venue.ws.connections >= 1, 30)
    time.sleep(1)
    tasks = Path(f"/proc/{process.pid}/task").iterdir()
    other = next(int(task.name) for task in tasks if task.name != str(process.pid))
    began = time.monotonic()
    os.kill(other, signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()  # a stream that missed the signal must not outlive the test

    assert process.returncode == 0, err
    assert time.monotonic() - began < 5, err
    assert out.strip().splitlines()[-1].startswith(f"etl stream ok: {len(SYMBOLS)} streams"), out
    assert checkpoint_mismatches(tmp_path / "live", "live", venue.step) == []
