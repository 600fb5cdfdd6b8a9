"""The parquet sink: the documented lake layout, encoded partition values, readers' view, atomic files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from sink_stores import FIXTURES

import etl
from etl.datasets import dataset
from etl.plugins import registry
from etl.testing.checks import align_types, check_same_rows
from etl.testing.pipelines import run_cli, single_pipeline, write_pipeline
from etl.testing.samples import sample_rows
from etl.timeframes import parse_time

START = parse_time("2024-01-30")


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def sink(lake: Path, tmp_path: Path):
    return registry().get("sink", "parquet")({"path": lake, "compression_level": 3},
                                             etl.PluginContext("p", tmp_path, tmp_path / ".etl"))


def files(lake: Path) -> list[str]:
    return sorted(str(path.relative_to(lake)) for path in lake.rglob("*") if path.is_file())


def test_pipeline_writes_one_zstd_file_per_stream_and_month(tmp_path: Path) -> None:
    source = {"plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"), "columns": {"ts": "timestamp"},
              "symbols": ["BTCUSDT", "ETHUSDT"], "timeframes": ["1h", "1d"], "start": "2024-01-01",
              "batch_rows": 100}
    sinks = [{"plugin": "parquet", "path": "lake"}]
    path = write_pipeline(tmp_path, single_pipeline(source, sinks, batch_rows=100))
    assert run_cli("run", str(path)).exit_code == 0
    assert files(tmp_path / "lake") == sorted(  # 40 hourly and 60 daily candles from 2024-01-01
        f"ohlcv/source=files/symbol={symbol}/timeframe={timeframe}/month={month}/data.parquet"
        for symbol in ("BTCUSDT", "ETHUSDT") for timeframe in ("1h", "1d") for month in ("2024-01", "2024-02")
    )
    example = tmp_path / "lake/ohlcv/source=files/symbol=BTCUSDT/timeframe=1h/month=2024-01/data.parquet"
    assert pq.ParquetFile(example).metadata.row_group(0).column(0).compression == "ZSTD"
    assert pl.read_parquet(example)["ts"].is_sorted()


def test_partition_values_are_encoded_and_readers_decode_them(sink, lake: Path) -> None:
    schema = dataset("trades")
    batch = sample_rows(schema, etl.Stream("trades", "BTC/USDT:USDT"), START, 5)
    sink.store(batch, schema, "trades")
    assert files(lake) == ["trades/source=sample/symbol=BTC%2FUSDT%3AUSDT/month=2024-01/data.parquet"]
    read = duckdb.sql(f"SELECT * FROM read_parquet('{lake}/trades/**/*.parquet', hive_partitioning=true, "
                      f"union_by_name=true)").pl()
    assert read["symbol"].unique().to_list() == ["BTC/USDT:USDT"]
    assert read["month"].unique().to_list() == ["2024-01"]


def test_documented_duckdb_read_sees_every_row_after_a_column_is_added(sink, lake: Path) -> None:
    """Files written before a new column lack it; the documented read (union_by_name) still sees all rows."""
    stream = etl.Stream("ohlcv", "BTC-USD", "1h")
    january = sample_rows(dataset("ohlcv"), stream, START, 24)
    february = sample_rows(dataset("ohlcv"), stream, START, 72, first_index=48).with_columns(
        pl.lit(55.5).alias("rsi_14"))
    sink.store(january, dataset("ohlcv"), "ohlcv")
    sink.store(february, dataset("ohlcv"), "ohlcv")
    read = duckdb.sql(f"SELECT * EXCLUDE (month) FROM read_parquet('{lake}/ohlcv/**/*.parquet', "
                      f"hive_partitioning=true, union_by_name=true)").pl()
    expected = pl.concat([january, february], how="diagonal")
    check_same_rows(align_types(read, expected), expected, list(dataset("ohlcv").key), "duckdb read of the lake")


def test_rewrites_leave_no_temporary_files(sink, lake: Path) -> None:
    stream = etl.Stream("ohlcv", "BTC-USD", "1h")
    for first in range(0, 60, 10):
        sink.store(sample_rows(dataset("ohlcv"), stream, START, 30, first_index=first), dataset("ohlcv"), "ohlcv")
    folder = "ohlcv/source=sample/symbol=BTC-USD/timeframe=1h"
    assert files(lake) == [f"{folder}/month={month}/data.parquet" for month in ("2024-01", "2024-02")]


def test_temporary_files_a_killed_writer_left_are_removed_when_the_month_is_written(sink, lake: Path) -> None:
    stream = etl.Stream("ohlcv", "BTC-USD", "1h")
    sink.store(sample_rows(dataset("ohlcv"), stream, START, 10), dataset("ohlcv"), "ohlcv")
    month = lake / "ohlcv/source=sample/symbol=BTC-USD/timeframe=1h/month=2024-01"
    (month / ".data.parquet.k1ll3d.tmp").write_bytes(b"half a parquet file")
    sink.store(sample_rows(dataset("ohlcv"), stream, START, 10, first_index=10), dataset("ohlcv"), "ohlcv")
    assert sorted(path.name for path in month.iterdir()) == ["data.parquet"]
    assert pl.read_parquet(month / "data.parquet").height == 20


def test_type_conflict_names_the_file(sink, lake: Path) -> None:
    batch = sample_rows(dataset("ohlcv"), etl.Stream("ohlcv", "BTC-USD", "1h"), START, 3)
    sink.store(batch, dataset("ohlcv"), "ohlcv")
    with pytest.raises(etl.SinkError) as raised:
        sink.store(batch.with_columns(pl.col("trades").cast(pl.Float64)), dataset("ohlcv"), "ohlcv")
    message = str(raised.value)
    assert "parquet table 'ohlcv' column 'trades' is Int64 in " in message
    assert "month=2024-01/data.parquet but the batch has Float64" in message


def test_compression_level_is_checked(tmp_path: Path) -> None:
    source = {"plugin": "files", "path": "x.csv", "symbols": ["BTCUSDT"], "timeframes": ["1d"]}
    path = write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "parquet", "path": "lake",
                                                               "compression_level": 40}]))
    run = run_cli("validate", str(path))
    assert run.exit_code == 2, str(run)
    assert "compression_level" in run.output and "zstd levels run from 1 to 22" in run.output
