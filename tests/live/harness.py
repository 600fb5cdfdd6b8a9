"""What the live tests of every venue share: running ``etl stream`` as a process, stopping it by a signal, and
checking that what it stored equals, row for row and feature for feature, what ``etl backfill`` stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from etl.testing import run_cli
from etl.testing.checks import check_same_values
from etl.timeframes import iso

FEATURES = [{"plugin": "features", "include": ["rsi_14", "sma_20", "ema_20", "atr_14"]}]
SINKS = [{"plugin": "duckdb", "path": "market.duckdb"}]

Pipeline = Callable[[Path, int], Path]  # (folder, start ms) -> the pipeline file of the pipeline "live"


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


def stored(folder: Path) -> pl.DataFrame:
    with duckdb.connect(str(folder / "market.duckdb"), read_only=True) as connection:
        return connection.sql("SELECT * FROM ohlcv ORDER BY symbol, ts").pl()


def assert_equals_backfill(folder: Path, pipeline: Pipeline, start: int, symbols: list[str],
                           step_ms: int) -> pl.DataFrame:
    """What ``etl stream`` stored in ``folder`` equals a backfill of the same window, per symbol."""
    live = stored(folder)
    end = int(live["ts"].max().timestamp() * 1000) + step_ms
    oracle_path = pipeline(folder.parent / f"{folder.name}-oracle", start)
    result = run_cli("backfill", str(oracle_path), "--pipeline", "live", "--start", iso(start), "--end", iso(end))
    assert result.exit_code == 0, str(result)
    oracle = stored(oracle_path.parent)
    for symbol in symbols:
        mine, theirs = live.filter(pl.col("symbol") == symbol), oracle.filter(pl.col("symbol") == symbol)
        check_same_values(mine, theirs, f"ohlcv/{symbol}", 1e-12)
    return live
