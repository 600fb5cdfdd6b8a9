"""What the live tests of every venue share: running ``etl stream`` as a process, stopping it by a signal,
checking that what it stored equals, row for row and feature for feature, what ``etl backfill`` stores, and
the scenarios every venue must pass (a ``Venue`` says how a test pipeline reaches that venue's fakes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.testing import run_cli
from etl.testing.checks import check_same_values
from etl.timeframes import iso, now_ms

FEATURES = [{"plugin": "features", "include": ["rsi_14", "sma_20", "ema_20", "atr_14"]}]
SINKS = [{"plugin": "duckdb", "path": "market.duckdb"}]



@dataclass
class Venue:
    """A venue's fakes (REST and websocket, the latter on ``fixtures.fake_ws``) and its test pipelines."""

    rest: Any
    ws: Any
    write: Callable[..., Path]  # (folder, start ms, **source options) -> the file of the pipeline "live"
    symbols: list[str]
    step: int  # the bar length of its streams, ms

    def pipeline(self, folder: Path, start: int, **source: Any) -> Path:
        return self.write(folder, start, **source)

    def bars_ago(self, bars: int) -> int:
        return now_ms() // self.step * self.step - bars * self.step

    def assert_equals_backfill(self, folder: Path, start: int) -> pl.DataFrame:
        """What ``etl stream`` stored in ``folder`` equals a backfill of the same window, per symbol, up to that
        symbol's last bar: a stop finds one stream's follower with its bar committed and another's with it in
        hand (its next start heals it)."""
        live = stored(folder)
        end = int(live["ts"].max().timestamp() * 1000) + self.step
        oracle_path = self.pipeline(folder.parent / f"{folder.name}-oracle", start)
        result = run_cli("backfill", str(oracle_path), "--pipeline", "live", "--start", iso(start), "--end",
                         iso(end))
        assert result.exit_code == 0, str(result)
        oracle = stored(oracle_path.parent)
        for symbol in self.symbols:
            mine = live.filter(pl.col("symbol") == symbol)
            assert mine.height, f"ohlcv/{symbol}: nothing stored"
            theirs = oracle.filter(pl.col("symbol") == symbol, pl.col("ts") <= mine["ts"].max())
            check_same_values(mine, theirs, f"ohlcv/{symbol}", 1e-12)
        return live


def start_stream(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "etl", "--log-format", "json", "stream", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def stop(process: subprocess.Popen[str], how: int = signal.SIGTERM) -> tuple[int, float, str, str]:
    began = time.monotonic()
    process.send_signal(how)
    out, err = process.communicate(timeout=20)
    return process.returncode, time.monotonic() - began, out, err


def stream_for(path: Path, seconds: float, how: int = signal.SIGTERM) -> tuple[int, float, str, str]:
    """Run ``etl stream`` for ``seconds``, then signal it; its exit code, how long it took to exit, its output."""
    process = start_stream(path)
    time.sleep(seconds)
    return stop(process, how)


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def stored(folder: Path, table: str = "ohlcv") -> pl.DataFrame:
    with duckdb.connect(str(folder / "market.duckdb"), read_only=True) as connection:
        return connection.sql(f"SELECT * FROM {table} ORDER BY ALL").pl()


def checkpoint_mismatches(folder: Path, pipeline: str, step: int, database: str = "market.duckdb",
                          table: str = "ohlcv") -> list[str]:
    """The streams of ``pipeline`` whose checkpoint is not what the DuckDB file in ``folder`` holds: its row count,
    and its next instant, ``step`` ms after the last stored row (0 for trades: they checkpoint at their last
    millisecond). A stop by a signal leaves them equal (DESIGN 9); a SIGKILL may leave the sink ahead."""
    checkpoint = folder / ".etl" / "checkpoints" / f"{pipeline}.json"
    streams = json.loads(checkpoint.read_text())["streams"] if checkpoint.exists() else {}
    held: dict[str, tuple[int, int | None]] = {}
    if (folder / database).exists():
        with duckdb.connect(str(folder / database), read_only=True) as connection:
            held = {symbol: (rows, last) for symbol, rows, last in connection.execute(
                f"SELECT symbol, count(*), max(epoch_ms(ts)) FROM {table} GROUP BY symbol").fetchall()}
    found = []
    for label, entry in streams.items():
        rows, last = held.pop(label.split("/")[1], (0, None))
        if rows != entry["rows"] or last != (entry["next_ms"] - step if entry["rows"] else None):
            found.append(f"{label}: checkpoint {entry['rows']} rows to {entry['next_ms']}, stored {rows} to {last}")
    return found + [f"{table}/{symbol}: {rows} rows stored, no checkpoint" for symbol, (rows, _) in held.items()]


def check_closed_bars_equal_a_backfill_and_sigterm_exits(venue: Venue, folder: Path) -> None:
    start = venue.bars_ago(60)
    code, took, out, err = stream_for(venue.pipeline(folder, start), 6)

    assert code == 0, err
    assert took < 5
    assert out.strip().splitlines()[-1].startswith(f"etl stream ok: {len(venue.symbols)} streams")
    live = venue.assert_equals_backfill(folder, start)
    for symbol in venue.symbols:
        assert live.filter(pl.col("symbol") == symbol).height >= 62, "the heal's 60 bars and the bars streamed after"
    assert venue.ws.closing_frames_sent >= 8
    assert '"event": "live connected"' in err


def check_faults_change_nothing(venue: Venue, folder: Path) -> None:
    """Two dropped connections, a silent one, repeated, late and unreadable frames, bars the venue never had."""
    rest, ws, step = venue.rest, venue.ws, venue.step
    start = venue.bars_ago(20)
    soon = start + 26 * step
    rest.missing_bars = {soon, soon + step, start + 5 * step}
    ws.repeat_closing = ws.late_closing = ws.garbage = True
    ws.drop(2)
    process = start_stream(venue.pipeline(folder, start, ws_silence=1.5))
    wait_for(lambda: ws.connections >= 3, 20)  # the two dropped ones and the next, however busy the machine
    time.sleep(2)
    ws.stall(3)
    time.sleep(6)
    code, _, _, err = stop(process)

    assert code == 0, err
    assert ws.connections >= 4, "two dropped connections and a silent one were replaced"
    assert "no frame for 1.5s: replacing the connection" in err
    assert "connection dropped without a close frame" in err
    assert '"event": "live frame unreadable"' in err
    assert err.count('"event": "live heal"') >= 3
    venue.assert_equals_backfill(folder, start)


def check_sigkill_then_restart_loses_nothing(venue: Venue, folder: Path) -> None:
    start = venue.bars_ago(30)
    path = venue.pipeline(folder, start)
    assert stream_for(path, 4, signal.SIGKILL)[0] == -signal.SIGKILL
    time.sleep(2)
    code, _, _, err = stream_for(path, 4)
    assert code == 0, err
    venue.assert_equals_backfill(folder, start)


def check_one_stream_fails_and_the_others_stream_on(venue: Venue, folder: Path, path: Path, failure: str) -> None:
    """``path`` has one stream that fails with ``failure``; the first symbol's bars go on landing."""
    code, _, out, err = stream_for(path, 4)

    assert code == 1, err
    assert failure in out, out
    assert stored(folder).filter(pl.col("symbol") == venue.symbols[0]).height >= 12


def accelerate_clock(monkeypatch: Any, speed: int = 60) -> None:
    """From now on, ``etl.timeframes.now_ms`` runs ``speed`` times the wall clock (``ETL_CLOCK``) in this test,
    its fakes, its backfills and the ``etl stream`` it starts: minute bars close every second."""
    monkeypatch.setenv("ETL_CLOCK", f"{speed}@{int(time.time() * 1000)}")


def recorded_gaps(folder: Path) -> dict[str, list[tuple[int, int]]]:
    """The gaps the ledger holds for the pipeline "live", by stream label, as (start, end) epoch ms."""
    from etl.ledger import Ledger
    from etl.timeframes import parse_time

    ledger = Ledger(folder / ".etl")
    found: dict[str, list[tuple[int, int]]] = {}
    for gap in ledger.gaps("live"):
        found.setdefault(gap["stream"], []).append((parse_time(gap["start"]), parse_time(gap["end"])))
    ledger.close()
    return found


def check_live_only_rows_and_gaps(folder: Path, path: Path, ws: Any, table: str,
                                  published: Callable[[], pl.DataFrame]) -> None:
    """For a dataset the venue serves no history of: through a dropped and a silent connection (``path`` sets
    ``ws_silence`` 1.5), ``etl stream`` stores what the fake published, once, except in the windows it recorded
    as gaps, which the ledger holds while the stream still runs and ``etl status --gaps`` lists; SIGTERM exits 0
    within 5 s."""
    ws.drop(1)
    ws.repeat_closing = ws.late_closing = ws.garbage = True
    process = start_stream(path)
    wait_for(lambda: ws.connections >= 2, 20)
    time.sleep(1.5)
    ws.stall(2.5)
    time.sleep(4)
    labels = [f"{table}/{symbol}" for symbol in published()["symbol"].unique()]
    wait_for(lambda: all(len(recorded_gaps(folder).get(label, [])) >= 2 for label in labels), 5)
    assert process.poll() is None, "the gaps are in the ledger before the stream stops"
    code, took, out, err = stop(process)

    assert code == 0, err
    assert took < 5
    assert out.strip().splitlines()[-1].startswith("etl stream ok:"), out
    assert '"event": "live gap"' in err
    live = stored(folder, table).with_columns(pl.col("ts").dt.epoch("ms"))
    sent = published()
    columns = sent.columns
    assert not live.select(columns).is_duplicated().any(), "no row stored twice"
    assert not live.join(sent, on=columns, how="anti").height, "every row stored was published"
    gaps = recorded_gaps(folder)
    dataset = table  # the pipelines' sinks name their tables after the dataset
    for symbol, rows in sent.partition_by("symbol", as_dict=True).items():
        label = f"{dataset}/{symbol[0]}"
        assert len(gaps.get(label, [])) >= 2, f"{label}: the dropped and the silent connection are gaps"
        mine = live.filter(pl.col("symbol") == symbol[0])
        outside = rows.filter(pl.col("ts") <= mine["ts"].max(), ~in_any(pl.col("ts"), gaps[label]))
        missing = outside.join(mine, on=columns, how="anti")
        assert not missing.height, f"{label}: published outside the gaps {gaps[label]} but not stored: {missing}"
        assert mine.height > 10
    listing = run_cli("status", str(path), "--gaps")
    assert f"{dataset}/{sent['symbol'][0]}" in listing.stdout, listing.stdout


def in_any(ts: pl.Expr, windows: list[tuple[int, int]]) -> pl.Expr:
    """``ts`` inside one of ``windows`` (both ends included)."""
    inside = pl.lit(False)
    for start, end in windows:
        inside = inside | ts.is_between(start, end)
    return inside
