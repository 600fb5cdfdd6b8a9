"""``etl stream`` writes its DuckDB file all day, and DuckDB lets one process hold it: a cron ``etl run`` into the
same file asks for it (``market.duckdb.wanted``), the stream hands it over after its commit and takes it back
once the run has let go (``etl.handoff``). The run stores its rows without being locked out, and the stream
loses nothing: what it stored still equals a backfill."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.timeframes import now_ms
from tests.live.harness import Venue, start_stream, stop, stored, stream_for, wait_for
from tests.sinks.file_holder import held


@pytest.fixture
def venue(binance_venue: Venue) -> Venue:
    return binance_venue


def cron_pipeline(folder: Path) -> Path:
    """Ten hourly bars from a CSV into the stream's DuckDB file, table ``cron_bars``."""
    lines = ["ts,open,high,low,close,volume"]
    lines += [f"2024-01-01T{hour:02d}:00:00Z,1,2,0.5,1.5,10" for hour in range(10)]
    (folder / "AAA.csv").write_text("\n".join(lines) + "\n")
    source = {"plugin": "files", "path": "{symbol}.csv", "symbols": ["AAA"], "timeframes": ["1h"],
              "start": "2024-01-01"}
    sink = {"plugin": "duckdb", "path": "market.duckdb", "table": "cron_bars"}
    return write_pipeline(folder, single_pipeline(source, [sink], name="cron", sink_wait=20), "cron.toml")


def test_a_run_into_the_file_a_stream_writes_gets_it_and_the_stream_goes_on(venue: Venue, tmp_path: Path) -> None:
    folder = tmp_path / "live"
    start = venue.bars_ago(20)
    process = start_stream(venue.pipeline(folder, start))
    wait_for(lambda: (folder / ".etl" / "checkpoints" / "live.json").exists(), 20)
    time.sleep(1)

    began = time.monotonic()
    result = run_cli("run", str(cron_pipeline(folder)))
    took, ran = time.monotonic() - began, now_ms()
    time.sleep(3)
    code, _, _, err = stop(process)

    assert result.exit_code == 0, str(result)
    assert took < 10, f"the run waited {took:.1f}s for the file"
    assert '"event": "sink held by another process; waiting"' in result.stderr
    assert stored(folder, "cron_bars").height == 10
    assert code == 0, err
    assert '"event": "sinks handed over"' in err
    assert not (folder / "market.duckdb.wanted").exists()
    live = venue.assert_equals_backfill(folder, start)
    for symbol in venue.symbols:
        last = live.filter(pl.col("symbol") == symbol)["ts"].max()
        assert last.timestamp() * 1000 >= ran, f"{symbol}: bars that began after the run ended landed"


def test_a_stream_waits_for_its_file_as_long_as_it_runs(venue: Venue, tmp_path: Path) -> None:
    """A process that does not yield (a notebook) holds the file: the stream is not locked out but waits, asking
    for it; SIGTERM ends the wait within 5 s with nothing written (exit 75: locked out, like a run). Started again
    once the file is free, the stream heals what it could not write and equals a backfill."""
    folder = tmp_path / "live"
    start = venue.bars_ago(20)
    path = venue.pipeline(folder, start)
    with held(folder / "market.duckdb"):
        process = start_stream(path)
        time.sleep(4)
        assert process.poll() is None, "still waiting"
        assert (folder / "market.duckdb.wanted").exists()
        code, took, out, err = stop(process)

    assert (code, took < 5) == (75, True), err
    assert '"event": "sink held by another process; waiting"' in err
    assert "LOCKED live" in out + err
    assert "the stream stopped while it waited for it, nothing was written" in err
    assert not (folder / ".etl" / "checkpoints" / "live.json").exists() or "BTCUSDT" not in \
        (folder / ".etl" / "checkpoints" / "live.json").read_text()
    code, _, _, err = stream_for(path, 4)
    assert code == 0, err
    venue.assert_equals_backfill(folder, start)
