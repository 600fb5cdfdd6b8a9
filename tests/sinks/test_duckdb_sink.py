"""The duckdb sink: an index-free table whose keys stay unique (a file another process holds: test_sink_lock)."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import duckdb
import polars as pl
import pytest
from sink_stores import FIXTURES, fixture_candles, read_duckdb
from structlog.testing import capture_logs

import etl
from etl.datasets import dataset
from etl.plugins import registry
from etl.testing.checks import align_types, check_same_rows
from etl.testing.pipelines import run_cli, single_pipeline, write_pipeline
from etl.testing.samples import sample_rows
from etl.timeframes import parse_time

KEY = ["source", "symbol", "timeframe", "ts"]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


@pytest.fixture
def sink(tmp_path: Path):
    sink = registry().get("sink", "duckdb")({"path": tmp_path / "market.duckdb"},
                                            etl.PluginContext("p", tmp_path, tmp_path / ".etl"))
    sink.open()
    yield sink
    sink.close()


def test_table_has_no_index_but_not_null_keys(sink, tmp_path: Path) -> None:
    """No PRIMARY KEY (it would slow every insert); uniqueness comes from delete-then-insert."""
    batch = sample_rows(dataset("ohlcv"), etl.Stream("ohlcv", "BTC-USD", "1h"), parse_time("2024-01-01"), 24)
    for _ in range(3):
        sink.store(batch, dataset("ohlcv"), "ohlcv")
    sink.close()
    with duckdb.connect(str(tmp_path / "market.duckdb"), read_only=True) as connection:
        constraints = connection.execute(
            "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() WHERE table_name = 'ohlcv'"
        ).fetchall()
        indexes = connection.execute("SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'ohlcv'").fetchall()
        duplicates = connection.execute(
            "SELECT count(*) FROM (SELECT source, symbol, timeframe, ts FROM ohlcv GROUP BY ALL HAVING count(*) > 1)"
        ).fetchall()
        rows = connection.execute("SELECT count(*) FROM ohlcv").fetchall()
    sink.open()
    assert sorted(constraints) == [("NOT NULL", [column]) for column in sorted(dataset("ohlcv").key)]
    assert indexes == [(0,)]
    assert duplicates == [(0,)]
    assert rows == [(24,)]


def test_large_batches_rewritten_in_one_connection_replace_their_rows(sink) -> None:
    """Batches past one DuckDB row group, with constant string columns, as the committer sends them. A table made
    by CREATE TABLE AS from such a batch hid later inserts from scans in DuckDB 2.0, so rewrites duplicated."""

    rows = 200_000
    start = parse_time("2024-01-01")

    def batch(symbol: str, close: float) -> pl.DataFrame:
        return pl.DataFrame({
            "source": "files", "symbol": symbol, "timeframe": "1m",
            "ts": pl.Series(range(start, start + rows * 60_000, 60_000)), "open": 1.0, "high": 2.0, "low": 0.5,
            "close": close, "volume": 10.0,
        }).with_columns(pl.from_epoch("ts", "ms").dt.replace_time_zone("UTC"))

    for symbol in ("AAA", "BBB", "CCC"):
        sink.store(batch(symbol, 1.0), dataset("ohlcv"), "ohlcv")
    sink.store(batch("BBB", 1.5), dataset("ohlcv"), "ohlcv")
    assert sink.connection.execute(
        "SELECT symbol, count(*), min(close), max(close) FROM ohlcv GROUP BY 1 ORDER BY 1").fetchall() == [
        ("AAA", rows, 1.0, 1.0), ("BBB", rows, 1.5, 1.5), ("CCC", rows, 1.0, 1.0)]


def test_fatal_error_reopens_the_file_and_writes_the_batch_again(sink, tmp_path: Path) -> None:
    """DuckDB's own fault injection aborts the next checkpoint with a fatal error, which invalidates the database
    (as an out-of-memory during a checkpoint does); the sink reopens the file and the batch lands once."""
    stream = etl.Stream("ohlcv", "BTC-USD", "1h")
    first = sample_rows(dataset("ohlcv"), stream, parse_time("2024-01-01"), 24)
    second = sample_rows(dataset("ohlcv"), stream, parse_time("2024-01-01"), 24, first_index=24)
    sink.store(first, dataset("ohlcv"), "ohlcv")
    sink.connection.execute("SET debug_checkpoint_abort = 'before_header'")
    sink.connection.execute("SET checkpoint_threshold = '1B'")  # the next commit checkpoints
    with capture_logs() as logged:
        sink.store(second, dataset("ohlcv"), "ohlcv")
    (reopened,) = [entry for entry in logged if entry["event"].startswith("duckdb database invalidated")]
    assert "Checkpoint aborted before header write" in reopened["error"]
    sink.store(second, dataset("ohlcv"), "ohlcv")  # the reopened file takes later batches as usual
    sink.close()
    stored = read_duckdb(tmp_path / "market.duckdb", "ohlcv")
    check_same_rows(align_types(stored, first), pl.concat([first, second]), KEY, "a batch after a fatal error")
    sink.open()


def fixture_pipeline(folder: Path, **pipeline_keys) -> Path:
    """Hourly candles of three symbols into market.duckdb, in batches small enough to make several commits."""
    source = {"plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"), "columns": {"ts": "timestamp"},
              "symbols": list(SYMBOLS), "timeframes": ["1h"], "start": "2024-01-01"}
    pipeline = single_pipeline(source, [{"plugin": "duckdb", "path": "market.duckdb"}], name="hourly",
                               batch_rows=200, commit_rows=200, concurrency=1, **pipeline_keys)
    return write_pipeline(folder, pipeline)


def test_fatal_error_again_after_reopening_fails_the_rest_of_the_run_with_one_message(tmp_path: Path) -> None:
    """The run's sink shares its database with another connection of the process (as a second sink on the same
    file would), so reopening finds the database still invalidated: every stream fails with the same message,
    and the next run lands every row once."""
    path = fixture_pipeline(tmp_path)
    database = tmp_path / "market.duckdb"
    other = duckdb.connect(str(database), config={"memory_limit": "128MB", "preserve_insertion_order": False,
                                                  "max_vacuum_tasks": 0})
    other.execute("SET debug_checkpoint_abort = 'before_header'")
    other.execute("SET checkpoint_threshold = '1B'")
    failed = run_cli("run", str(path))
    with suppress(duckdb.Error):
        other.close()
    assert failed.exit_code == 1, str(failed)
    reasons = {line.split(": ", 1)[1] for line in failed.stdout.splitlines() if line.startswith("FAILED hourly")}
    (reason,) = reasons
    assert reason.startswith(f"duckdb {database}: a fatal error invalidated the database again after it was "
                             f"reopened (FATAL Error: Failed: database has been invalidated"), reason
    assert "Checkpoint aborted before header write" in reason
    assert reason.endswith("; nothing more is written to it in this run")
    assert failed.summary.startswith("etl run failed: 3 streams, 0 rows, 0 quarantined, 3 failed"), failed.summary

    again = run_cli("run", str(path))
    assert again.exit_code == 0, str(again)
    expected = fixture_candles(SYMBOLS, ("1h",))
    check_same_rows(align_types(read_duckdb(database, "ohlcv"), expected), expected, KEY, "the run after")


def test_full_disk_is_named_in_the_failure(tmp_path: Path) -> None:
    """A file that cannot grow (RLIMIT_FSIZE stands in for a full disk) fails the streams with DuckDB's own
    'File too large', not with the 'no transaction is active' of the rollback after the failed commit. Batches
    of a row group or more are written to the database file at once, so the insert itself hits the limit."""
    streams = [etl.Stream("ohlcv", symbol, "1m") for symbol in ("AAA", "BBB")]
    for stream in streams:
        frame = sample_rows(dataset("ohlcv"), stream, parse_time("2024-01-01"), 250_000, source="files")
        frame.write_parquet(tmp_path / f"{stream.symbol}_1m.parquet")
    source = {"plugin": "files", "path": str(tmp_path / "{symbol}_{timeframe}.parquet"),
              "symbols": [stream.symbol for stream in streams], "timeframes": ["1m"], "start": "2024-01-01"}
    path = write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "duckdb", "path": "market.duckdb"}],
                                                    name="minutes", concurrency=1))

    def small_files() -> None:  # one stream's rows take about 3 MB: neither fits, however the batches group
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 2**20, 2 * 2**20))

    full = subprocess.run([sys.executable, "-m", "etl", "run", str(path)], preexec_fn=small_files,
                          capture_output=True, text=True, timeout=120)
    assert full.returncode == 1, full.stdout + full.stderr
    failures = [line for line in full.stdout.splitlines() if line.startswith("FAILED minutes")]
    assert len(failures) == 2, full.stdout
    for line in failures:
        assert f'Could not write file "{tmp_path / "market.duckdb"}' in line, line  # the file or its WAL
        assert line.endswith("File too large"), line
    assert "no transaction is active" not in full.stdout + full.stderr
