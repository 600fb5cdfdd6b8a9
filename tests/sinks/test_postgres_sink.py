"""The postgres sink against a real server: table layout, secrets, TimescaleDB, lost connections.

Pipelines read the fixture candles with the ``files`` source and run through the real CLI; the rows
are read back with psycopg.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sink_stores import FIXTURES, fixture_candles, read_postgres

import etl
from etl.datasets import dataset
from etl.plugins import registry
from etl.testing.checks import align_types, check_same_rows
from etl.testing.pipelines import run_cli, single_pipeline, write_pipeline
from etl.testing.samples import sample_rows
from etl.timeframes import parse_time

KEY = ["source", "symbol", "timeframe", "ts"]
PASSWORD = "pw-Zq81-never-printed"
PASSWORD_VARIABLE = "ETL_TEST_PG_PASSWORD"
PIPELINE = "pg"


def btc_hourly(start: str, end: str) -> pl.DataFrame:
    return fixture_candles(("BTCUSDT",), ("1h",), start, end)


def pipeline_file(folder: Path, dsn: str, **sink_options: Any) -> Path:
    source = {"plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"),
              "columns": {"ts": "timestamp"}, "symbols": ["BTCUSDT"], "timeframes": ["1h"], "batch_rows": 100}
    sink = {"plugin": "postgres", "dsn": dsn, "schema": "market", **sink_options}
    return write_pipeline(folder, single_pipeline(source, [sink], name=PIPELINE, batch_rows=100))


def backfill_args(path: Path, start: str, end: str) -> list[str]:
    return ["backfill", str(path), "--pipeline", PIPELINE, "--start", start, "--end", end]


def stored(dsn: str, table: str = "ohlcv") -> pl.DataFrame:
    return read_postgres(dsn, "market", table)


def assert_rows(dsn: str, expected: pl.DataFrame, what: str) -> None:
    check_same_rows(align_types(stored(dsn), expected), expected, KEY, f"postgres after {what}")


def test_table_has_primary_key_and_timestamptz(postgres_dsn, tmp_path) -> None:
    run = run_cli(*backfill_args(pipeline_file(tmp_path, postgres_dsn), "2024-01-01", "2024-01-05"))
    assert run.exit_code == 0, str(run)
    with psycopg.connect(postgres_dsn) as connection:
        key = connection.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'market.ohlcv'::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)").fetchall()
        types = dict(connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'market' AND table_name = 'ohlcv'").fetchall())
    assert [name for (name,) in key] == KEY
    assert types["ts"] == "timestamp with time zone"
    assert types["close"] == "double precision"
    assert types["trades"] == "bigint"
    assert types["symbol"] == "text"
    assert_rows(postgres_dsn, btc_hourly("2024-01-01", "2024-01-05"), "a first backfill")


def test_password_comes_from_the_environment_and_is_never_shown(postgres_server, postgres_dsn, tmp_path) -> None:
    database = conninfo_to_dict(postgres_dsn)["dbname"]
    postgres_server.create_role("writer", PASSWORD, database)
    dsn = f"postgresql://writer:${{{PASSWORD_VARIABLE}}}@127.0.0.1:{postgres_server.port}/{database}"
    path = pipeline_file(tmp_path, dsn, retries=1)
    run = run_cli(*backfill_args(path, "2024-01-01", "2024-01-03"), env={PASSWORD_VARIABLE: PASSWORD})
    assert run.exit_code == 0, str(run)
    assert_rows(postgres_dsn, btc_hourly("2024-01-01", "2024-01-03"), "a run as a password-protected role")
    assert PASSWORD not in run.output

    wrong = "wrong-Pw-4417-secret"
    refused = run_cli(*backfill_args(path, "2024-01-03", "2024-01-04"), env={PASSWORD_VARIABLE: wrong})
    assert refused.exit_code == 1, str(refused)
    assert "password authentication failed" in refused.output
    assert f"writer@127.0.0.1:{postgres_server.port}/{database}" in refused.output
    assert wrong not in refused.output


def test_unparsable_dsn_is_a_config_error_without_the_secret(tmp_path) -> None:
    path = pipeline_file(tmp_path, f"host=localhost password=${{{PASSWORD_VARIABLE}}} dbname")
    run = run_cli("validate", str(path), env={PASSWORD_VARIABLE: PASSWORD})
    assert run.exit_code == 2, str(run)
    assert "'dsn' is not a valid libpq connection string" in run.output
    assert "pipelines.pg.sinks[0]" in run.output
    assert PASSWORD not in run.output


def test_retries_must_be_positive(postgres_dsn, tmp_path) -> None:
    run = run_cli("validate", str(pipeline_file(tmp_path, postgres_dsn, retries=0)))
    assert run.exit_code == 2, str(run)
    assert "'retries' must be at least 1" in run.output


def test_unreachable_server_fails_the_streams_with_the_address(tmp_path) -> None:
    port = unused_port()
    path = pipeline_file(tmp_path, f"host=127.0.0.1 port={port} dbname=market user=etl", retries=2)
    run = run_cli(*backfill_args(path, "2024-01-01", "2024-01-02"))
    assert run.exit_code == 1, str(run)
    assert f"cannot connect to etl@127.0.0.1:{port}/market" in run.output
    assert "gave up after 2 attempts" in run.output


def test_hypertable_without_timescaledb_is_a_clear_error(postgres_dsn, tmp_path) -> None:
    run = run_cli(*backfill_args(pipeline_file(tmp_path, postgres_dsn, hypertable=True), "2024-01-01", "2024-01-02"))
    assert run.exit_code == 1, str(run)
    assert "hypertable = true needs the TimescaleDB extension" in run.output
    assert "set hypertable = false" in run.output
    assert stored(postgres_dsn).is_empty()


def test_type_conflict_names_table_column_and_both_types(postgres_dsn, tmp_path) -> None:
    batch = sample_rows(dataset("ohlcv"), etl.Stream("ohlcv", "BTC-USD", "1h"), parse_time("2024-01-01"), 5)
    with open_sink(postgres_dsn, tmp_path) as sink:
        sink.store(batch, dataset("ohlcv"), "ohlcv")
        with pytest.raises(etl.SinkError) as raised:
            sink.store(batch.with_columns(pl.col("trades").cast(pl.String)), dataset("ohlcv"), "ohlcv")
    assert "postgres table market.ohlcv column 'trades' is bigint but the batch has text" in str(raised.value)


def test_identical_rewrite_writes_no_row_versions(postgres_dsn, tmp_path) -> None:
    """Rows whose values did not change keep their row version (xmin): nothing is rewritten or bloated."""
    batch = sample_rows(dataset("ohlcv"), etl.Stream("ohlcv", "BTC-USD", "1h"), parse_time("2024-01-01"), 50)
    changed = batch.with_columns(pl.when(pl.int_range(pl.len()) < 5).then(pl.col("close") + 1)
                                 .otherwise(pl.col("close")).alias("close"))
    with open_sink(postgres_dsn, tmp_path) as sink:
        sink.store(batch, dataset("ohlcv"), "ohlcv")
        before = versions(postgres_dsn)
        sink.store(batch, dataset("ohlcv"), "ohlcv")
        assert versions(postgres_dsn) == before
        sink.store(changed, dataset("ohlcv"), "ohlcv")
    after = versions(postgres_dsn)
    assert sum(after[ts] != before[ts] for ts in before) == 5
    check_same_rows(align_types(stored(postgres_dsn), changed), changed, KEY, "postgres after a partial change")


def test_dropped_connection_mid_batch_is_retried_and_nothing_is_half_written(postgres_server, postgres_dsn,
                                                                             tmp_path) -> None:
    path = pipeline_file(tmp_path, postgres_dsn)
    assert run_cli(*backfill_args(path, "2024-01-01", "2024-01-10")).exit_code == 0
    with etl_subprocess(backfill_args(path, "2024-01-10", "2024-02-01")) as process:
        with table_locked(postgres_dsn):
            process.start()
            pid = waiting_backend(postgres_server, process)
            assert_rows(postgres_dsn, btc_hourly("2024-01-01", "2024-01-10"), "a batch blocked mid-way")
            postgres_server.execute("SELECT pg_terminate_backend(%s)", [pid])
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stdout + stderr
    assert "postgres connection lost; retrying" in stderr
    assert_rows(postgres_dsn, btc_hourly("2024-01-01", "2024-02-01"), "a batch replayed on a new connection")


def test_connection_lost_on_every_attempt_fails_the_stream_and_keeps_the_table_whole(postgres_server, postgres_dsn,
                                                                                     tmp_path) -> None:
    path = pipeline_file(tmp_path, postgres_dsn, retries=2)
    assert run_cli(*backfill_args(path, "2024-01-01", "2024-01-10")).exit_code == 0
    with etl_subprocess(backfill_args(path, "2024-01-10", "2024-02-01")) as process, table_locked(postgres_dsn):
        process.start()
        first = waiting_backend(postgres_server, process)
        postgres_server.execute("SELECT pg_terminate_backend(%s)", [first])
        second = waiting_backend(postgres_server, process, other_than=first)
        postgres_server.execute("SELECT pg_terminate_backend(%s)", [second])
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stdout + stderr
    assert "connection lost while writing table 'ohlcv'" in stdout
    assert "gave up after 2 attempts" in stdout
    assert_rows(postgres_dsn, btc_hourly("2024-01-01", "2024-01-10"), "a batch that never committed")


def test_server_restart_between_batches_reconnects(postgres_server, postgres_dsn, tmp_path) -> None:
    stream = etl.Stream("ohlcv", "BTC-USD", "1h")
    first = sample_rows(dataset("ohlcv"), stream, parse_time("2024-01-01"), 24)
    second = sample_rows(dataset("ohlcv"), stream, parse_time("2024-01-01"), 24, first_index=24)
    with open_sink(postgres_dsn, tmp_path) as sink:
        sink.store(first, dataset("ohlcv"), "ohlcv")
        postgres_server.restart()
        sink.store(second, dataset("ohlcv"), "ohlcv")
    expected = pl.concat([first, second])
    check_same_rows(align_types(stored(postgres_dsn), expected), expected, KEY, "postgres after a server restart")


class open_sink:
    """The postgres sink opened on ``dsn`` with schema ``market``, closed at the end of the block."""

    def __init__(self, dsn: str, folder: Path):
        settings = {"dsn": dsn, "schema": "market", "hypertable": False, "retries": 2}
        self.sink = registry().get("sink", "postgres")(settings, etl.PluginContext(PIPELINE, folder, folder))

    def __enter__(self) -> Any:
        self.sink.open()
        return self.sink

    def __exit__(self, *_: Any) -> None:
        self.sink.close()


def versions(dsn: str) -> dict[Any, str]:
    with psycopg.connect(dsn) as connection:
        return dict(connection.execute("SELECT ts, xmin::text FROM market.ohlcv").fetchall())


class table_locked:
    """Hold a SHARE lock on market.ohlcv: readers pass, a sink's COPY into it waits, mid-transaction."""

    def __init__(self, dsn: str):
        self.connection = psycopg.connect(dsn)

    def __enter__(self) -> None:
        self.connection.execute("LOCK TABLE market.ohlcv IN SHARE MODE")

    def __exit__(self, *_: Any) -> None:
        self.connection.rollback()
        self.connection.close()


class etl_subprocess:
    """``etl ARGS`` in a child process, started on demand and killed if a failed test leaves it running."""

    def __init__(self, args: list[str]):
        self.args = args
        self.process: subprocess.Popen[str] | None = None
        self.returncode: int | None = None

    def __enter__(self) -> etl_subprocess:
        return self

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "etl", "--log-format", "json", *self.args],
                                        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def poll(self) -> int | None:
        return self.process.poll()

    def communicate(self, timeout: float) -> tuple[str, str]:
        output = self.process.communicate(timeout=timeout)
        self.returncode = self.process.returncode
        return output

    def __exit__(self, *_: Any) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def waiting_backend(server: Any, process: etl_subprocess, other_than: int | None = None) -> int:
    """The pid of the sink's backend once it waits for our lock (its batch transaction is open)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = server.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                              "AND wait_event_type = 'Lock' AND pid <> %s", [f"etl {PIPELINE}", other_than or 0])
        if rows:
            return rows[0][0]
        if process.poll() is not None:
            pytest.fail(f"etl exited {process.poll()} before blocking:\n{process.communicate(timeout=10)}")
        time.sleep(0.05)
    pytest.fail("the sink never waited for the lock")


def unused_port() -> int:
    """A port nothing listens on (bound for a moment, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_every_supported_type_round_trips_exactly(postgres_dsn, tmp_path) -> None:
    """Binary COPY of every supported column type, across encoder chunks of different layouts."""
    rows = 70_000  # over one 65,536-row chunk: the first chunk has no NULLs, the second has
    index = pl.int_range(rows, eager=True)
    late_null = index >= rows - 3
    frame = pl.DataFrame({
        "source": pl.repeat("sample", rows, eager=True),
        "symbol": pl.repeat("BTC-USD", rows, eager=True),
        "timeframe": pl.repeat("1m", rows, eager=True),
        "ts": (index * 60_000 - 86_400_000 * 365 * 40).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
        "note": cycle(["", "ünïcödé ✓", 'quote " comma , tab \t', "x" * 500], index).set(late_null, None),
        "price": (index.cast(pl.Float64) / 7).set(late_null, None),
        "special": cycle([float("nan"), float("inf"), float("-inf"), -0.0, 5e-324], index),
        "ratio": index.cast(pl.Float32) / 3,
        "count": (index * 1_000_003).set(late_null, None),
        "small": (index % 100).cast(pl.Int8),
        "unsigned": index.cast(pl.UInt32) * 60_000,
        "flag": (index % 3 == 0).set(late_null, None),
        "day": cycle([date(1999, 12, 31), date(2000, 1, 1), date(2024, 2, 29)], index),
        "naive": (index * 1_000).cast(pl.Datetime("us")),
        "category": cycle(["a", "b", "c"], index).cast(pl.Categorical),
    })
    with open_sink(postgres_dsn, tmp_path) as sink:
        sink.store(frame, dataset("ohlcv"), "types")
    with psycopg.connect(postgres_dsn) as connection:
        columns = ", ".join("ratio::float8" if name == "ratio" else name for name in frame.columns)  # exact real
        stored = connection.execute(f"SELECT {columns} FROM market.types ORDER BY ts").fetchall()
    expected = frame.with_columns(pl.col("category").cast(pl.String)).rows()
    assert len(stored) == rows
    assert [tuple(map(repr_float, row)) for row in stored] == [tuple(map(repr_float, row)) for row in expected]


def cycle(values: list[Any], index: pl.Series) -> pl.Series:
    return pl.Series(values).gather(index % len(values))


def repr_float(value: Any) -> Any:
    """Floats by repr, so NaN equals NaN and -0.0 differs from 0.0."""
    return repr(value) if isinstance(value, float) else value
