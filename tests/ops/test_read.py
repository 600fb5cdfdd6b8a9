"""``etl.read``: the stored rows of a pipeline as a LazyFrame, the same from each kind of sink."""

from pathlib import Path

import polars as pl
import pytest

import etl
from etl.testing import single_pipeline, write_pipeline
from tests.sinks.sink_stores import FIXTURES, fixture_candles

SOURCE = {"plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"), "columns": {"ts": "timestamp"},
          "symbols": ["BTCUSDT", "ETHUSDT"], "timeframes": ["1h", "1d"]}
KEY = ["source", "symbol", "timeframe", "ts"]


def sink_table(kind: str, folder: Path, dsn: str) -> dict:
    return {"duckdb": {"plugin": "duckdb", "path": str(folder / "market.duckdb")},
            "parquet": {"plugin": "parquet", "path": str(folder / "lake")},
            "sqlite": {"plugin": "sqlite", "path": str(folder / "market.sqlite")},
            "postgres": {"plugin": "postgres", "dsn": dsn, "schema": "market"}}[kind]


@pytest.mark.parametrize("kind", ["duckdb", "parquet", "sqlite", "postgres"])
def test_read_returns_the_stored_rows_of_each_sink_kind(kind, etl_cli, postgres_dsn, tmp_path):
    path = write_pipeline(tmp_path, single_pipeline(SOURCE, [sink_table(kind, tmp_path, postgres_dsn)], name="m"))
    assert etl_cli("run", str(path)).exit_code == 0
    frame = etl.read(path, "m", symbols="ETHUSDT", start="2024-01-02", end="2024-01-03T12:00:00Z")
    assert isinstance(frame, pl.LazyFrame)
    got = frame.collect()
    expected = fixture_candles(("ETHUSDT",), ("1d", "1h"), "2024-01-02", "2024-01-03T12:00:00").sort(KEY)
    assert got.columns[:9] == ["source", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]
    assert got.schema["ts"] == pl.Datetime("ms", "UTC")
    assert got.select(expected.columns).equals(expected)

    everything = etl.read(path, "m", columns=["symbol", "ts", "close"]).collect()
    assert everything.columns == ["symbol", "ts", "close"]
    assert everything.height == fixture_candles(("BTCUSDT", "ETHUSDT"), ("1h", "1d")).height


def test_read_before_any_run_is_empty_with_the_dataset_schema(etl_cli, tmp_path):
    path = write_pipeline(tmp_path, single_pipeline(SOURCE, [sink_table("duckdb", tmp_path, "")], name="m"))
    frame = etl.read(path, "m").collect()
    assert frame.height == 0
    assert frame.schema["ts"] == pl.Datetime("ms", "UTC")


def test_read_of_an_unknown_pipeline_names_the_choices(tmp_path):
    path = write_pipeline(tmp_path, single_pipeline(SOURCE, [sink_table("duckdb", tmp_path, "")], name="m"))
    with pytest.raises(etl.ConfigError, match="no pipeline 'x'; pipelines: m"):
        etl.read(path, "x")
