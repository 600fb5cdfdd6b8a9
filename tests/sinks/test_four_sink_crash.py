"""Crash safety with all four sinks in one pipeline: files -> duckdb + parquet + sqlite + postgres.

A backfill runs in a subprocess and SIGKILLs itself at a chosen instant (``ETL_CRASH_AT``): before a
sink commit, between two sinks, during a checkpoint write, after a batch. ``etl backfill --resume``
then finishes it, and every store must hold exactly what an uninterrupted run stored: the fixture rows,
each once, value for value, in all four stores alike.
"""

from __future__ import annotations

import signal
from pathlib import Path

import polars as pl
import pytest
from sink_stores import FIXTURES, fixture_candles, read_store

from etl.testing.checks import align_types, check_same_rows
from etl.testing.pipelines import PipelineRun, run_subprocess, single_pipeline, write_pipeline

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
TIMEFRAMES = ("1h", "1d")
KEY = ["source", "symbol", "timeframe", "ts"]
SINKS = ("duckdb", "parquet", "sqlite", "postgres")
BATCH_ROWS = 40  # the 3 x 2 streams make 78 batches; committed one by one, that is 312 sink commits
GROUPED = 400  # commit_rows gathering about ten batches of several streams into one write per sink

SOURCE = {
    "plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"), "columns": {"ts": "timestamp"},
    "batch_rows": BATCH_ROWS, "symbols": list(SYMBOLS), "timeframes": list(TIMEFRAMES),
}
SINK_TABLES = [
    {"plugin": "duckdb", "path": "stores/market.duckdb"},
    {"plugin": "parquet", "path": "stores/lake"},
    {"plugin": "sqlite", "path": "stores/market.sqlite"},
    {"plugin": "postgres", "dsn": "${ETL_TEST_POSTGRES_DSN}", "schema": "market"},
]


def fixture_rows() -> pl.DataFrame:
    return fixture_candles(SYMBOLS, TIMEFRAMES)


def project(folder: Path, commit_rows: int = BATCH_ROWS) -> Path:
    """The pipeline file: the fixture candles fanned out to the four sinks, in small batches."""
    pipeline = single_pipeline(SOURCE, SINK_TABLES, name="fanout", batch_rows=BATCH_ROWS, commit_rows=commit_rows,
                               concurrency=3)
    return write_pipeline(folder, pipeline)


def backfill(path: Path, dsn: str, *args: str, crash_at: str | None = None) -> PipelineRun:
    env = {"ETL_TEST_POSTGRES_DSN": dsn, "ETL_CRASH_AT": crash_at or ""}
    return run_subprocess("backfill", str(path), *args, env=env, cwd=path.parent)


def start(path: Path, dsn: str, crash_at: str | None = None) -> PipelineRun:
    return backfill(path, dsn, "--pipeline", "fanout", "--start", "2024-01-01", "--end", "2024-04-01",
                    crash_at=crash_at)


def stores(folder: Path, dsn: str) -> dict[str, pl.DataFrame]:
    settings = {
        "duckdb": {"path": folder / "stores" / "market.duckdb"},
        "parquet": {"path": folder / "stores" / "lake"},
        "sqlite": {"path": folder / "stores" / "market.sqlite"},
        "postgres": {"dsn": dsn, "schema": "market"},
    }
    return {sink: read_store(sink, settings[sink], "ohlcv") for sink in SINKS}


def assert_all_hold(found: dict[str, pl.DataFrame], expected: pl.DataFrame, what: str) -> None:
    for sink, frame in found.items():
        check_same_rows(align_types(frame, expected), expected, KEY, f"{sink} after {what}")


def in_fixture_types(frame: pl.DataFrame) -> pl.DataFrame:
    return align_types(frame, fixture_rows())


@pytest.fixture(scope="module")
def uninterrupted(postgres_server, tmp_path_factory) -> dict[str, pl.DataFrame]:
    """An uninterrupted backfill: the stored data every crashed-and-resumed run must equal."""
    dsn = postgres_server.create_database("crash_reference")
    folder = tmp_path_factory.mktemp("uninterrupted")
    run = start(project(folder), dsn)
    assert run.exit_code == 0, f"uninterrupted backfill failed:\n{run}"
    found = stores(folder, dsn)
    assert_all_hold(found, fixture_rows(), "an uninterrupted backfill")
    return found


@pytest.mark.parametrize(("crash_at", "commit_rows"), [
    ("sink_commit:1", BATCH_ROWS), ("sink_commit:150", BATCH_ROWS), ("between_sinks:3", BATCH_ROWS),
    ("between_sinks:100", BATCH_ROWS), ("checkpoint_write:30", BATCH_ROWS), ("after_batch:40", BATCH_ROWS),
    ("between_sinks:5", GROUPED),
])
def test_killed_backfill_resumes_to_identical_stores(crash_at, commit_rows, uninterrupted, postgres_dsn,
                                                     tmp_path) -> None:
    path = project(tmp_path / "project", commit_rows)
    crashed = start(path, postgres_dsn, crash_at=crash_at)
    assert crashed.exit_code == -signal.SIGKILL, f"expected a SIGKILL at {crash_at}:\n{crashed}"
    resumed = backfill(path, postgres_dsn, "--resume")
    assert resumed.exit_code == 0, f"resume after a crash at {crash_at} failed:\n{resumed}"
    found = stores(path.parent, postgres_dsn)
    for sink in SINKS:
        check_same_rows(in_fixture_types(found[sink]), in_fixture_types(uninterrupted[sink]), KEY,
                        f"{sink} after a crash at {crash_at} and --resume, against the uninterrupted run")
    assert_all_hold(found, fixture_rows(), f"a crash at {crash_at} and --resume")
