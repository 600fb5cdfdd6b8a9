"""``etl status --stored``: per stream and sink, what the sink holds, beside the checkpoint."""

import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl.testing import single_pipeline, write_pipeline
from tests.ops.helpers import hourly, write_hours
from tests.sinks.sink_stores import read_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ohlcv"
SINKS = ("duckdb", "parquet", "sqlite", "postgres")


def four_sinks(folder: Path, dsn: str) -> Path:
    source = {"plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"), "columns": {"ts": "timestamp"},
              "symbols": ["BTCUSDT", "ETHUSDT"], "timeframes": ["1h", "1d"]}
    sinks = [{"plugin": "duckdb", "path": str(folder / "market.duckdb")},
             {"plugin": "parquet", "path": str(folder / "lake")},
             {"plugin": "sqlite", "path": str(folder / "market.sqlite")},
             {"plugin": "postgres", "dsn": dsn, "schema": "market"}]
    return write_pipeline(folder, single_pipeline(source, sinks, name="fanout"))


def counted(plugin: str, settings: dict, table: str) -> dict[str, tuple[int, int, int]]:
    """Rows and first and last ts (epoch ms) per stream label, straight from the store's own client."""
    frame = read_store(plugin, settings, table)
    ts = frame["ts"]
    if ts.dtype == pl.String:
        ts = ts.str.to_datetime(time_zone="UTC")
    frame = frame.with_columns(ts.dt.epoch("ms") if ts.dtype != pl.Int64 else ts)
    grouped = frame.group_by("symbol", "timeframe").agg(pl.len(), pl.col("ts").min().alias("first"),
                                                        pl.col("ts").max().alias("last"))
    return {f"ohlcv/{symbol}/{tf}": (rows, first, last) for symbol, tf, rows, first, last in grouped.iter_rows()}


def test_stored_equals_counts_taken_from_each_sink(etl_cli, postgres_dsn, tmp_path):
    from etl.timeframes import next_bar, parse_time

    path = four_sinks(tmp_path, postgres_dsn)
    assert etl_cli("run", str(path)).exit_code == 0
    shown = etl_cli("status", str(path), "--stored")
    assert shown.exit_code == 0, shown.stdout
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["pipeline", "stream", "sink", "table", "rows", "first", "last", "size",
                                "checkpoint", "check"]
    settings = {"duckdb": {"path": tmp_path / "market.duckdb"}, "parquet": {"path": tmp_path / "lake"},
                "sqlite": {"path": tmp_path / "market.sqlite"}, "postgres": {"dsn": postgres_dsn, "schema": "market"}}
    expected = {sink: counted(sink, settings[sink], "ohlcv") for sink in SINKS}
    seen = {}
    for line in lines[1:]:
        pipeline, stream, sink, table, rows, first, last, *size, checkpoint, check = line.split()
        assert (pipeline, table, check) == ("fanout", "ohlcv", "ok")
        assert parse_time(checkpoint) == next_bar(parse_time(last), stream.rsplit("/", 1)[1])
        assert (size != ["-"]) == (sink == "parquet"), "only the lake knows its bytes per stream"
        seen.setdefault(sink, {})[stream] = (int(rows), parse_time(first), parse_time(last))
    assert seen == expected
    assert len(lines) == 1 + 4 * 4


@pytest.fixture
def hourly_store(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly())
    write_hours(tmp_path / "AAA.csv", [0, 1, 2, 3])
    etl_cli("run", str(path))
    return path


def check_of(etl_cli, path):
    result = etl_cli("status", str(path), "--stored")
    return result.exit_code, result.stdout.splitlines()[1].split("  ")[-1].strip()


def test_a_sink_missing_rows_the_checkpoint_counts_is_flagged(hourly_store, etl_cli, tmp_path):
    assert check_of(etl_cli, hourly_store) == (0, "ok")
    with duckdb.connect(str(tmp_path / "g.duckdb")) as con:
        con.execute("delete from ohlcv where hour(ts) = 3")
    assert check_of(etl_cli, hourly_store) == (1, "MISMATCH: the checkpoint is past the last row stored")
    with duckdb.connect(str(tmp_path / "g.duckdb")) as con:
        con.execute("delete from ohlcv")
    assert check_of(etl_cli, hourly_store) == (1, "MISMATCH: the checkpoint has rows this sink lacks")


def test_rows_past_the_checkpoint_are_flagged(hourly_store, etl_cli, tmp_path):
    checkpoint = tmp_path / ".etl" / "checkpoints" / "g.json"
    data = json.loads(checkpoint.read_text())
    data["streams"]["ohlcv/AAA/1h"].update(next="2024-01-01T02:00:00Z", next_ms=1704074400000)
    checkpoint.write_text(json.dumps(data))
    assert check_of(etl_cli, hourly_store) == (1, "MISMATCH: rows past the checkpoint (the next run writes them "
                                                  "again)")


def test_nothing_stored_and_backfilled_only(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly())
    assert etl_cli("status", str(path), "--stored").stdout.splitlines()[1].split() == [
        "g", "ohlcv/AAA/1h", "duckdb", "ohlcv", "0", "-", "nothing", "stored"]
    write_hours(tmp_path / "AAA.csv", [0, 1])
    etl_cli("backfill", str(path), "-p", "g", "--start", "2024-01-01", "--end", "2024-01-02")
    assert check_of(etl_cli, path) == (0, "no checkpoint (backfilled only)")


def test_an_unreadable_sink_is_an_error_line(hourly_store, etl_cli, tmp_path):
    shutil.copy(tmp_path / "AAA.csv", tmp_path / "g.duckdb")
    code, check = check_of(etl_cli, hourly_store)
    assert code == 1
    assert check.startswith(f"ERROR: duckdb: cannot read {tmp_path / 'g.duckdb'}: ")
