"""Overlapping runs sharing one DuckDB file: a run waits for the file another process holds, up to the
pipeline's ``sink_wait``, then reports the pipeline LOCKED once (exit 75), never as failed streams.

The other process is real: a child Python holding the file with a DuckDB write connection until told to
let go, as a second ``etl run`` or a notebook would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sink_stores import FIXTURES, fixture_candles, read_duckdb

from etl.testing.checks import align_types, check_same_rows
from etl.testing.pipelines import run_cli, run_subprocess, write_pipeline
from etl.testing.server import FakeServer, Reply
from tests.sinks.file_holder import held

KEY = ["source", "symbol", "timeframe", "ts"]


def two_pipelines(sink_wait: int, hourly_wait: int | None = None) -> dict:
    """Daily and hourly candles of one symbol, two pipelines writing one DuckDB file; ``sink_wait`` under
    [settings], ``hourly_wait`` the hourly pipeline's own."""
    def pipeline(timeframe: str, **keys: Any) -> dict:
        source = {"plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"),
                  "columns": {"ts": "timestamp"}, "symbols": ["BTCUSDT"], "timeframes": [timeframe]}
        return {"source": source, **keys, "sinks": [{"plugin": "duckdb", "path": "market.duckdb"}]}

    hourly = pipeline("1h") if hourly_wait is None else pipeline("1h", sink_wait=hourly_wait)
    return {"settings": {"sink_wait": sink_wait}, "pipelines": {"daily": pipeline("1d"), "hourly": hourly}}


def stored_candles(folder: Path, timeframe: str):
    stored = read_duckdb(folder / "market.duckdb", "ohlcv")
    return stored.filter(stored["timeframe"] == timeframe) if stored.height else stored


def test_run_waits_for_the_file_and_lands_its_rows_once_it_is_free(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, two_pipelines(sink_wait=120))
    database = tmp_path / "market.duckdb"
    with held(database) as holder:
        run = subprocess.Popen([sys.executable, "-m", "etl", "--log-format", "json", "run", str(path), "-p", "hourly"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in run.stderr:
            if json.loads(line)["event"] == "sink held by another process; waiting":
                break
        else:
            raise AssertionError(f"the run never waited for the file; it ended with {run.wait()}")
        assert f"duckdb: {database} is held by another process (PID {holder.pid})" in line
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    expected = fixture_candles(("BTCUSDT",), ("1h",))
    assert out.splitlines()[-1].startswith(f"etl run ok: 1 streams, {expected.height} rows"), out
    check_same_rows(align_types(stored_candles(tmp_path, "1h"), expected), expected, KEY, "hourly after the wait")


def test_file_held_past_sink_wait_locks_the_pipeline_once_and_fails_no_stream(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, two_pipelines(sink_wait=600, hourly_wait=1))
    database = tmp_path / "market.duckdb"
    assert run_subprocess("run", str(path), "-p", "daily").exit_code == 0
    with held(database) as holder:
        locked = run_subprocess("run", str(path))
    assert locked.exit_code == 75, str(locked)
    assert (f"LOCKED hourly: duckdb: {database} is held by another process (PID {holder.pid}); waited 1s for it, "
            f"nothing was written") in locked.stderr
    assert "LOCKED daily" not in locked.stderr, "daily had nothing to commit, so it never needed the file"
    assert "FAILED" not in locked.output
    assert locked.summary.startswith("etl run locked: 1 streams, 0 rows, 0 quarantined, 0 failed"), locked.summary
    assert locked.summary.endswith("locked: hourly"), locked.summary
    assert stored_candles(tmp_path, "1h").is_empty()
    checkpoints = tmp_path / ".etl" / "checkpoints" / "hourly.json"
    assert not checkpoints.exists() or "ohlcv/BTCUSDT/1h" not in checkpoints.read_text()
    status = run_cli("status", str(path))
    (hourly,) = [line for line in status.stdout.splitlines() if line.startswith("hourly")]
    assert hourly.endswith("never run"), status.stdout

    after = run_subprocess("run", str(path))
    assert after.exit_code == 0, str(after)
    expected = fixture_candles(("BTCUSDT",), ("1h",))
    check_same_rows(align_types(stored_candles(tmp_path, "1h"), expected), expected, KEY,
                    "hourly once the file is free")


def test_sink_wait_may_be_zero_but_not_negative(tmp_path: Path) -> None:
    assert run_cli("validate", str(write_pipeline(tmp_path, two_pipelines(sink_wait=0)))).exit_code == 0
    refused = run_cli("validate", str(write_pipeline(tmp_path, two_pipelines(sink_wait=0, hourly_wait=-5))))
    assert refused.exit_code == 2, str(refused)
    assert "Key 'sink_wait' in pipelines.hourly must be at least 0, not -5" in refused.output


def test_a_run_still_retrying_its_source_does_not_hold_the_file(tmp_path: Path) -> None:
    """A run whose exchange answers 503 keeps retrying; it has nothing to write yet, so it has not opened the
    DuckDB file, and another pipeline's run writes the file meanwhile without waiting."""
    pipelines = two_pipelines(sink_wait=1)
    with FakeServer(lambda request: Reply.text("maintenance", status=503)) as exchange:
        pipelines["pipelines"]["hourly"]["source"] = {
            "plugin": "binance", "base_url": exchange.url, "symbols": ["BTCUSDT"], "timeframes": ["1h"],
            "start": "2024-01-01"}
        path = write_pipeline(tmp_path, pipelines)
        retrying = subprocess.Popen([sys.executable, "-m", "etl", "--log-format", "json", "run", str(path), "-p",
                                     "hourly"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for line in retrying.stderr:
                if json.loads(line)["event"] == "retrying":
                    break
            other = run_subprocess("run", str(path), "-p", "daily")
            assert retrying.poll() is None, "the exchange run ended before the other run: nothing was proved"
        finally:
            retrying.kill()
            retrying.communicate()
    assert other.exit_code == 0, str(other)
    assert "sink held by another process" not in other.stderr
    expected = fixture_candles(("BTCUSDT",), ("1d",))
    check_same_rows(align_types(stored_candles(tmp_path, "1d"), expected), expected, KEY, "daily beside a retrying run")

