"""The duckdb sink: an index-free table whose keys stay unique (a file another process holds: test_sink_lock)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import etl
from etl.datasets import dataset
from etl.plugins import registry
from etl.testing.samples import sample_rows
from etl.timeframes import parse_time


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
    import polars as pl

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
