"""The duckdb sink: an index-free table whose keys stay unique, and a clear error when the file is busy."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from sink_stores import FIXTURES

import etl
from etl.datasets import dataset
from etl.plugins import registry
from etl.testing.pipelines import run_subprocess, single_pipeline, write_pipeline
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
        sink.write(batch, dataset("ohlcv"), "ohlcv")
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


def test_database_held_by_another_process_fails_with_its_path(tmp_path: Path) -> None:
    source = {"plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"), "columns": {"ts": "timestamp"},
              "symbols": ["BTCUSDT"], "timeframes": ["1d"], "start": "2024-01-01"}
    path = write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "duckdb", "path": "busy.duckdb"}]))
    with duckdb.connect(str(tmp_path / "busy.duckdb")):
        run = run_subprocess("run", str(path))
    assert run.exit_code == 1, str(run)
    assert f"duckdb: cannot open {tmp_path / 'busy.duckdb'}" in run.output
