"""``etl prune``: one symbol out of four sinks, its checkpoint entries, quarantine and gaps; killed, it finishes
when run again."""

import json
import signal

import polars as pl
import pytest
from click.testing import CliRunner

from etl.cli import cli
from etl.testing.pipelines import run_subprocess
from etl.timeframes import parse_time
from tests.ops.helpers import hourly, write_hours
from tests.ops.test_stored import counted, four_sinks
from tests.sinks.sink_stores import read_store

SINKS = ("duckdb", "parquet", "sqlite", "postgres")


@pytest.fixture
def fanout(etl_cli, postgres_dsn, tmp_path):
    path = four_sinks(tmp_path, postgres_dsn)
    assert etl_cli("run", str(path)).exit_code == 0
    settings = {"duckdb": {"path": tmp_path / "market.duckdb"}, "parquet": {"path": tmp_path / "lake"},
                "sqlite": {"path": tmp_path / "market.sqlite"}, "postgres": {"dsn": postgres_dsn, "schema": "market"}}
    return path, settings


def per_sink(settings):
    return {sink: counted(sink, settings[sink], "ohlcv") for sink in SINKS}


def checkpoint_streams(path):
    return sorted(json.loads((path.parent / ".etl" / "checkpoints" / "fanout.json").read_text())["streams"])


def test_prune_removes_one_symbol_from_four_sinks(fanout, etl_cli):
    path, settings = fanout
    before = per_sink(settings)
    eth = {label: value for label, value in before["duckdb"].items() if "/ETHUSDT/" in label}
    result = etl_cli("prune", str(path), "-p", "fanout", "-s", "ETHUSDT", "--yes")
    assert result.exit_code == 0, result.output
    rows = sum(count for count, _, _ in eth.values())
    assert result.stdout.splitlines() == [
        f"duckdb ohlcv: {rows:,} rows removed", f"parquet ohlcv: {rows:,} rows removed",
        f"sqlite ohlcv: {rows:,} rows removed", f"postgres ohlcv: {rows:,} rows removed",
        "checkpoint entries: 2, quarantine files: 0, gaps: 0",
    ]
    after = per_sink(settings)
    assert after == {sink: {label: value for label, value in stored.items() if label not in eth}
                     for sink, stored in before.items()}
    assert checkpoint_streams(path) == ["ohlcv/BTCUSDT/1d", "ohlcv/BTCUSDT/1h"]
    assert not list((path.parent / "lake" / "ohlcv" / "source=files").glob("symbol=ETHUSDT*"))

    again = etl_cli("prune", str(path), "-p", "fanout", "-s", "ETHUSDT", "--yes")
    assert again.stdout.splitlines()[0] == "duckdb ohlcv: 0 rows removed"
    assert per_sink(settings) == after


def test_before_keeps_the_later_rows_and_the_checkpoint(fanout, etl_cli):
    path, settings = fanout
    before = {sink: sum(rows for label, (rows, _, _) in stored.items() if "ETHUSDT" in label)
              for sink, stored in per_sink(settings).items()}
    cut = "2024-01-03T12:30:00Z"
    etl_cli("prune", str(path), "-p", "fanout", "-s", "BTCUSDT", "--before", cut, "--yes")
    for sink in SINKS:
        frame = read_store(sink, settings[sink], "ohlcv")
        btc = frame.filter(pl.col("symbol") == "BTCUSDT")["ts"]
        if btc.dtype == pl.String:
            btc = btc.str.to_datetime(time_zone="UTC")
        assert (btc.min() if btc.dtype == pl.Int64 else btc.dt.epoch("ms").min()) == parse_time(cut) + 30 * 60_000
        assert frame.filter(pl.col("symbol") == "ETHUSDT").height == before[sink], sink
    assert len(checkpoint_streams(path)) == 4


def test_a_killed_prune_finishes_when_run_again(fanout):
    path, settings = fanout
    killed = run_subprocess("prune", str(path), "-p", "fanout", "-s", "ETHUSDT", "--yes",
                            env={"ETL_CRASH_AT": "between_sinks:2"})
    assert killed.exit_code == -signal.SIGKILL
    halfway = per_sink(settings)
    assert not any("ETHUSDT" in label for label in halfway["parquet"])
    assert any("ETHUSDT" in label for label in halfway["sqlite"])
    finished = run_subprocess("prune", str(path), "-p", "fanout", "-s", "ETHUSDT", "--yes")
    assert finished.exit_code == 0, str(finished)
    assert not any("ETHUSDT" in label for stored in per_sink(settings).values() for label in stored)
    assert checkpoint_streams(path) == ["ohlcv/BTCUSDT/1d", "ohlcv/BTCUSDT/1h"]


def test_prune_asks_first(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly())
    write_hours(tmp_path / "AAA.csv", [0, 1, 2])
    etl_cli("run", str(path))
    refused = CliRunner().invoke(cli, ["prune", str(path), "-p", "g", "-s", "AAA"], input="n\n")
    assert refused.exit_code == 1
    assert refused.output == ("Remove AAA's rows from g (duckdb), with its checkpoint entries, quarantine and "
                              "gaps? [y/N]: n\nAborted!\n")
    assert etl_cli("status", str(path), "--stored").stdout.splitlines()[1].split()[4] == "3"
    agreed = CliRunner().invoke(cli, ["prune", str(path), "-p", "g", "-s", "AAA"], input="y\n")
    assert agreed.output.splitlines()[1:] == ["duckdb ohlcv: 3 rows removed",
                                              "checkpoint entries: 1, quarantine files: 0, gaps: 0"]


def test_prune_removes_the_quarantine_and_the_gaps(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly().replace('[[pipelines.g.sinks]]', '[[pipelines.g.transforms]]\nplugin = "validate"'
                                                                     '\n\n[[pipelines.g.sinks]]'))
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"2024-01-01T{hour:02d}:00:00Z,1,{0.1 if hour == 1 else 2},0.5,1.5,10" for hour in (0, 1, 2, 5)]
    (tmp_path / "AAA.csv").write_text("\n".join(lines) + "\n")
    assert ", 1 quarantined, " in etl_cli("run", str(path)).summary
    assert list((tmp_path / ".etl" / "quarantine").rglob("*.parquet"))
    result = etl_cli("prune", str(path), "-p", "g", "-s", "AAA", "--yes")
    assert result.stdout.splitlines()[-1] == "checkpoint entries: 1, quarantine files: 1, gaps: 1"
    assert not list((tmp_path / ".etl" / "quarantine").rglob("*.parquet"))
    assert etl_cli("status", str(path), "--gaps").stdout == "no missing bars\n"


def test_prune_of_an_unknown_pipeline_is_a_usage_error(write_pipeline, etl_cli):
    result = etl_cli("prune", str(write_pipeline(hourly())), "-p", "nope", "-s", "AAA", "--yes")
    assert result.exit_code == 2
    assert "no pipeline 'nope'; pipelines: g" in result.stderr
