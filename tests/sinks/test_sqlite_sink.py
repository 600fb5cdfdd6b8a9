"""The sqlite sink: WAL mode, the documented timestamp text, declared types, atomic batches."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sink_stores import FIXTURES

import etl
from etl.datasets import dataset
from etl.plugins import registry
from etl.testing.pipelines import run_cli, single_pipeline, write_pipeline
from etl.testing.samples import sample_rows
from etl.timeframes import parse_time

BTC = etl.Stream("ohlcv", "BTC-USD", "1h")


@pytest.fixture
def sink(tmp_path: Path):
    sink = registry().get("sink", "sqlite")({"path": tmp_path / "db" / "market.sqlite"},
                                            etl.PluginContext("p", tmp_path, tmp_path / ".etl"))
    sink.open()
    yield sink
    sink.close()


def query(sink: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(sink.settings["path"]) as connection:
        return connection.execute(sql, params).fetchall()


def test_pipeline_stores_wal_database_with_iso_timestamps(tmp_path: Path) -> None:
    source = {"plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"), "columns": {"ts": "timestamp"},
              "symbols": ["BTCUSDT", "ETHUSDT"], "timeframes": ["1d"], "start": "2024-01-01"}
    path = write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "sqlite", "path": "data/market.sqlite"}]))
    run = run_cli("run", str(path))
    assert run.exit_code == 0, str(run)
    with sqlite3.connect(tmp_path / "data" / "market.sqlite") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        first = connection.execute("SELECT ts FROM ohlcv WHERE symbol = 'BTCUSDT' ORDER BY ts LIMIT 2").fetchall()
        assert first == [("2024-01-01T00:00:00.000Z",), ("2024-01-02T00:00:00.000Z",)]
        in_february = connection.execute(
            "SELECT count(*) FROM ohlcv WHERE ts >= '2024-02-01' AND ts < '2024-03-01'").fetchone()[0]
        assert in_february == 2 * 29
        assert connection.execute("SELECT count(*) FROM ohlcv").fetchone()[0] == 2 * 60


def test_declared_types_and_key(sink) -> None:
    sink.store(sample_rows(dataset("ohlcv"), BTC, parse_time("2024-01-01"), 3), dataset("ohlcv"), "ohlcv")
    columns = {name: (kind, notnull, pk) for _, name, kind, notnull, _, pk in query(sink, "PRAGMA table_info(ohlcv)")}
    assert columns["ts"] == ("TEXT", 1, 4)
    assert columns["source"] == ("TEXT", 1, 1)
    assert columns["close"] == ("REAL", 0, 0)
    assert columns["trades"] == ("INTEGER", 0, 0)


def test_every_datetime_is_utc_text_with_milliseconds(sink) -> None:
    batch = sample_rows(dataset("ohlcv"), BTC, parse_time("2024-01-01"), 2).with_columns(
        pl.Series("listed_at", [datetime(2024, 3, 31, 2, 30, 0, 123000, tzinfo=UTC)] * 2)
        .dt.convert_time_zone("Europe/Paris"),
        pl.Series("local_naive", [datetime(2024, 1, 1, 12, 0, 0, 5000)] * 2),
        pl.Series("day", [datetime(2024, 2, 29).date()] * 2),
    )
    sink.store(batch, dataset("ohlcv"), "ohlcv")
    assert query(sink, "SELECT ts, listed_at, local_naive, day FROM ohlcv ORDER BY ts") == [
        ("2024-01-01T00:00:00.000Z", "2024-03-31T02:30:00.123Z", "2024-01-01T12:00:00.005Z", "2024-02-29"),
        ("2024-01-01T01:00:00.000Z", "2024-03-31T02:30:00.123Z", "2024-01-01T12:00:00.005Z", "2024-02-29"),
    ]
    assert query(sink, "SELECT julianday(ts) - julianday('2024-01-01') FROM ohlcv ORDER BY ts")[1][0] == \
        pytest.approx(1 / 24)


def test_type_conflict_names_table_column_and_both_types(sink) -> None:
    batch = sample_rows(dataset("ohlcv"), BTC, parse_time("2024-01-01"), 3)
    sink.store(batch, dataset("ohlcv"), "ohlcv")
    with pytest.raises(etl.SinkError) as raised:
        sink.store(batch.with_columns(pl.col("trades").cast(pl.String)), dataset("ohlcv"), "ohlcv")
    assert "sqlite table 'ohlcv' column 'trades' is INTEGER but the batch has TEXT" in str(raised.value)


def test_a_failing_batch_rolls_back_whole(sink) -> None:
    """A value SQLite cannot take in the middle of a batch: SinkError, and none of the batch's rows land."""
    good = sample_rows(dataset("ohlcv"), BTC, parse_time("2024-01-01"), 5)
    failing = sample_rows(dataset("ohlcv"), BTC, parse_time("2024-01-01"), 10, first_index=5).with_columns(
        pl.Series("trades", [1, 2, 3, 4, 5, 2**64 - 1, 7, 8, 9, 10], pl.UInt64))
    sink.store(good.with_columns(pl.col("trades").cast(pl.UInt64)), dataset("ohlcv"), "ohlcv")
    with pytest.raises(etl.SinkError) as raised:
        sink.store(failing, dataset("ohlcv"), "ohlcv")
    assert "market.sqlite table 'ohlcv'" in str(raised.value)
    assert query(sink, "SELECT count(*) FROM ohlcv") == [(5,)]


def test_readers_do_not_block_the_writer(sink) -> None:
    """WAL: a reader inside a transaction keeps its snapshot while the sink commits a batch."""
    first = sample_rows(dataset("ohlcv"), BTC, parse_time("2024-01-01"), 5)
    sink.store(first, dataset("ohlcv"), "ohlcv")
    reader = sqlite3.connect(sink.settings["path"], isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM ohlcv").fetchone() == (5,)
    sink.store(sample_rows(dataset("ohlcv"), BTC, parse_time("2024-01-01"), 5, first_index=5),
               dataset("ohlcv"), "ohlcv")
    assert reader.execute("SELECT count(*) FROM ohlcv").fetchone() == (5,)
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM ohlcv").fetchone() == (10,)
    reader.close()
