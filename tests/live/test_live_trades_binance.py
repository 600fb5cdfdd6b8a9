"""``etl stream`` of Binance aggregate trades against local fakes of its REST API and websocket streams.

What it stores over a window must equal, trade for trade, what ``etl backfill`` stores for that window from
REST ``aggTrades``: whatever the connections did (dropped, silent, repeated, late, out-of-order and unreadable
frames, trades the stream never sent), and across a SIGKILL and a restart.
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

from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.timeframes import iso, now_ms
from fixtures.exchanges import synthetic
from tests.live.harness import SINKS, recorded_gaps, start_stream, stop, stored, stream_for, wait_for

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def fakes() -> Iterator[tuple[Any, Any]]:
    from fixtures.fake_binance import FakeBinance
    from fixtures.fake_binance_ws import FakeBinanceWebsocket

    with FakeBinance() as rest, FakeBinanceWebsocket(rest) as ws:
        yield rest, ws


def pipeline(folder: Path, fakes: tuple[Any, Any], start: int, market: str = "spot", **source: Any) -> Path:
    """USD-M's market streams live under ``/market`` since Binance split its websocket URLs (2026)."""
    rest, ws = fakes
    config = {"plugin": "binance", "market": market, "dataset": "trades", "symbols": SYMBOLS, "start": iso(start),
              "base_url": rest.url, "ws_url": ws.url + ("/market" if market == "usdm" else ""),
              "retry_base_delay": 0.01, **source}
    return write_pipeline(folder, single_pipeline(config, SINKS, name="live"))


def assert_equals_backfill(folder: Path, fakes: tuple[Any, Any], start: int, market: str = "spot") -> pl.DataFrame:
    """Per symbol, the trades stored before its last stored millisecond (its other trades may not have landed
    yet) are the trades ``etl backfill`` stores for that window, and no trade is stored twice. Each stream ends
    at its own millisecond: a stop finds one follower with its frames committed and another with them still in
    hand (the next start heals them), so one symbol's end says nothing of the other's trades."""
    live = stored(folder, "trades")
    assert not live.select("symbol", "trade_id").is_duplicated().any(), "no trade stored twice"
    ends = live.group_by("symbol").agg(pl.col("ts").max().alias("end"))
    end = int(ends["end"].max().timestamp() * 1000)
    oracle_path = pipeline(folder.parent / f"{folder.name}-oracle", fakes, start, market)
    result = run_cli("backfill", str(oracle_path), "--pipeline", "live", "--start", iso(start), "--end", iso(end))
    assert result.exit_code == 0, str(result)
    window, oracle = (frame.join(ends, on="symbol", maintain_order="left").filter(pl.col("ts") < pl.col("end"))
                      .drop("end") for frame in (live, stored(oracle_path.parent, "trades")))
    keys = ["symbol", "trade_id"]
    missing, extra = oracle.join(window, on=keys, how="anti"), window.join(oracle, on=keys, how="anti")
    assert not missing.height and not extra.height, f"missing {missing.select(*keys, 'ts').rows()}, extra {extra}"
    assert window.drop("ingested_at", strict=False).equals(oracle.drop("ingested_at", strict=False))
    for symbol, last in ends.iter_rows():
        expected = fakes[0].expected_trades(symbol, start, int(last.timestamp() * 1000))
        assert window.filter(pl.col("symbol") == symbol).height == len(expected) > 0
    assert ends.height == len(SYMBOLS)
    return live


def committed_ms(folder: Path, label: str) -> int:
    """Where the checkpoint of stream ``label`` of the pipeline "live" stands (0 before its first commit)."""
    checkpoints = folder / ".etl" / "checkpoints" / "live.json"
    streams = json.loads(checkpoints.read_text())["streams"] if checkpoints.exists() else {}
    return streams.get(label, {}).get("next_ms", 0)


def test_trades_equal_a_backfill_whatever_the_connection_does_and_sigterm_exits(fakes: tuple[Any, Any],
                                                                                  tmp_path: Path) -> None:
    ws = fakes[1]
    start = now_ms() - 30_000
    ws.repeat_closing = ws.late_closing = ws.garbage = ws.out_of_order = ws.malformed = True
    soon = synthetic.trade_at(now_ms() + 2_500)
    ws.unsent_ids = {soon, soon + 1, soon + 4, soon + 30}  # never sent live: holes the ids show
    ws.drop(2)
    process = start_stream(pipeline(tmp_path / "live", fakes, start, ws_silence=1.5))
    wait_for(lambda: ws.connections >= 3, 20)  # the two dropped ones, and the next
    time.sleep(1.5)
    ws.stall(3)
    time.sleep(5)
    stall_ended = now_ms() - 2_000
    muted_at, ws.muted = now_ms(), {"ETHUSDT"}  # its stream ends before the other's: each is compared to its end
    wait_for(lambda: committed_ms(tmp_path / "live", "trades/BTCUSDT") > muted_at + 500, 20)
    code, took, out, err = stop(process)
    (tmp_path / "stream.log").write_text(err)

    assert code == 0, err
    assert took < 5
    assert out.strip().splitlines()[-1].startswith("etl stream ok: 2 streams")
    assert ws.connections >= 4, "two dropped connections and a silent one were replaced"
    assert "connection dropped without a close frame" in err
    assert "no frame for 1.5s: replacing the connection" in err
    assert '"event": "live frame unreadable"' in err
    assert '"event": "live record unreadable"' in err and "not a price" in err
    assert err.count('"event": "live heal"') >= 2 * 4, "each stream: its start, three reconnections, its holes"
    live = assert_equals_backfill(tmp_path / "live", fakes, start)
    assert live["ts"].max().timestamp() * 1000 > stall_ended, "trades landed after the silent connection too"
    last = dict(live.group_by("symbol").agg(pl.col("ts").max()).iter_rows())
    assert last["ETHUSDT"] < last["BTCUSDT"], "the muted stream ended first"
    assert ws.events_sent > 30


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_sigkill_mid_flight_then_a_restart_loses_nothing_and_repeats_nothing(fakes: tuple[Any, Any], tmp_path: Path,
                                                                            market: str) -> None:
    start = now_ms() - 20_000
    path = pipeline(tmp_path / "live", fakes, start, market)
    checkpoints = tmp_path / "live" / ".etl" / "checkpoints" / "live.json"
    process = start_stream(path)
    wait_for(checkpoints.exists, 30)
    time.sleep(1.5)  # live trades land after the heal
    assert stop(process, signal.SIGKILL)[0] == -signal.SIGKILL
    entry = json.loads(checkpoints.read_text())["streams"]["trades/BTCUSDT"]
    assert entry["committed_at_next"], "trades checkpoint at their last millisecond, with its trade ids"
    time.sleep(1)
    code, _, _, err = stream_for(path, 4)
    (tmp_path / "restart.log").write_text(err)
    (tmp_path / "checkpoint-at-kill.json").write_text(json.dumps(entry))

    assert code == 0, err
    assert_equals_backfill(tmp_path / "live", fakes, start, market)


def test_a_hole_rest_does_not_fill_is_a_recorded_gap(fakes: tuple[Any, Any], tmp_path: Path) -> None:
    """REST that lags behind the stream (it serves no trade after ``trades_published``) cannot fill a hole in
    the ids: it is tried again, then recorded as a gap, and the trades after it go on landing."""
    rest, ws = fakes
    path = pipeline(tmp_path / "live", fakes, now_ms() - 5_000)
    checkpoints = tmp_path / "live" / ".etl" / "checkpoints" / "live.json"
    process = start_stream(path)
    wait_for(checkpoints.exists, 30)
    skipped = synthetic.trade_at(now_ms() + 1_000)
    rest.trades_published = skipped - 1
    ws.unsent_ids = {skipped, skipped + 1}
    time.sleep(3)
    code, _, _, err = stop(process)

    assert code == 0, err
    assert f"REST did not serve the ids {skipped}..{skipped + 1} the stream skipped" in err
    gaps = recorded_gaps(tmp_path / "live")["trades/BTCUSDT"]
    assert any(start <= skipped // 3 * synthetic.TRADE_EVERY_MS < end for start, end in gaps)
    live = stored(tmp_path / "live", "trades").filter(pl.col("symbol") == "BTCUSDT")
    ids = live["trade_id"].cast(pl.Int64)
    assert skipped - 1 in ids and skipped + 2 in ids and skipped not in ids
