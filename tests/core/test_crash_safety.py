"""Kill a backfill with SIGKILL at chosen instants; after --resume both sinks equal an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl.testing.pipelines import PipelineRun, run_subprocess
from tests.conftest import with_plugins

PIPELINE = """
    [pipelines.hist]
    batch_rows = 150
    commit_rows = 300
    concurrency = 2

    [pipelines.hist.source]
    plugin = "files"
    path = "{symbol}.csv"
    columns = { ts = "timestamp" }
    batch_rows = 150
    symbols = ["AAA", "BBB", "CCC"]
    timeframes = ["1h"]

    [[pipelines.hist.sinks]]
    plugin = "duckdb"
    path = "store/market.duckdb"

    [[pipelines.hist.sinks]]
    plugin = "parquet"
    path = "store/lake"
"""
HOURS = 1500


def make_project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, symbol in enumerate(["AAA", "BBB", "CCC"]):
        ts = pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1) + pl.duration(hours=HOURS - 1),
                               "1h", eager=True)
        base = pl.Series(range(HOURS), dtype=pl.Float64) * 0.5 + 100 * (index + 1)
        pl.DataFrame({
            "timestamp": ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": base, "high": base + 2, "low": base - 2, "close": base + 1, "volume": base * 3,
        }).write_csv(folder / f"{symbol}.csv")
    path = folder / "pipelines.toml"
    path.write_text(PIPELINE)
    return path


def backfill(path: Path, env: dict[str, str] | None = None) -> PipelineRun:
    return run_subprocess("backfill", str(path), "--pipeline", "hist", "--start", "2024-01-01", "--end", "2024-04-01",
                          env=env)


def contents(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    order = "order by symbol, ts"
    with duckdb.connect(str(folder / "store" / "market.duckdb"), read_only=True) as con:
        db = con.sql(f"select * from ohlcv {order}").pl()
    lake = duckdb.sql(
        f"select * exclude (month) from read_parquet('{folder}/store/lake/ohlcv/**/*.parquet', "
        f"hive_partitioning=true) {order}"
    ).pl()
    return db, lake


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    folder = tmp_path_factory.mktemp("reference")
    result = backfill(make_project(folder))
    assert result.exit_code == 0, result.stderr
    db, lake = contents(folder)
    assert db.height == 3 * HOURS
    return db, lake


@pytest.mark.parametrize("crash_at", [
    "sink_commit:1", "sink_commit:9", "between_sinks:4", "checkpoint_write:6", "after_batch:11",
])
def test_resume_after_sigkill_equals_an_uninterrupted_run(crash_at, reference, tmp_path):
    path = make_project(tmp_path)
    killed = backfill(path, env={"ETL_CRASH_AT": crash_at})
    assert killed.exit_code == -signal.SIGKILL, killed.stderr

    records = list((tmp_path / ".etl" / "backfills").glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["status"] == "running"

    resumed = run_subprocess("backfill", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout.splitlines()[-1].startswith("etl backfill ok: 3 streams")
    db, lake = contents(tmp_path)
    assert db.equals(reference[0])
    assert lake.equals(reference[1])
    assert db.select(pl.struct("symbol", "ts").is_duplicated().any()).item() is False
    assert json.loads(records[0].read_text())["status"] == "done"
    assert not list((tmp_path / ".etl").rglob("*.tmp"))

    again = run_subprocess("backfill", str(path), "--resume")
    assert again.exit_code == 0
    assert again.stdout == "No unfinished backfills.\n"


def test_second_crash_during_resume_still_converges(reference, tmp_path):
    path = make_project(tmp_path)
    assert backfill(path, env={"ETL_CRASH_AT": "between_sinks:5"}).exit_code == -signal.SIGKILL
    crashed_again = run_subprocess("backfill", str(path), "--resume", env={"ETL_CRASH_AT": "sink_commit:3"})
    assert crashed_again.exit_code == -signal.SIGKILL
    assert run_subprocess("backfill", str(path), "--resume").exit_code == 0
    db, lake = contents(tmp_path)
    assert db.equals(reference[0]) and lake.equals(reference[1])


SLOW_PIPELINE = """
    [pipelines.slow]
    batch_rows = 4
    commit_rows = 4

    [pipelines.slow.source]
    plugin = "synthetic"
    symbols = ["AAA"]
    timeframes = ["1h"]
    start = "2024-01-01"
    end = "2024-01-02"
    page = 4
    delay = 0.4

    [[pipelines.slow.sinks]]
    plugin = "duckdb"
    path = "slow.duckdb"
"""


def test_concurrent_run_exits_75_and_the_first_one_finishes(plugin_sites, write_pipeline, tmp_path):
    path = write_pipeline(SLOW_PIPELINE)
    env = {"PYTHONPATH": str(plugin_sites["etl-synthetic"])}
    import os

    first = subprocess.Popen([sys.executable, "-m", "etl", "run", str(path)], env={**os.environ, **env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".etl" / "locks" / "slow.lock"
    deadline = time.monotonic() + 30
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = run_subprocess("run", str(path), env=with_plugins([plugin_sites["etl-synthetic"]]))
    assert second.exit_code == 75
    assert f"Pipeline 'slow' is locked by another run (pid {first.pid}, lock {lock}); nothing ran" in second.stdout + \
        second.stderr
    assert second.stdout.splitlines()[-1].startswith("etl run locked: 0 streams, 0 rows")
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "24 rows" in out


def test_lock_left_by_a_killed_run_does_not_block(plugin_sites, write_pipeline, tmp_path):
    path = write_pipeline(SLOW_PIPELINE.replace("delay = 0.4", "delay = 0.0"))
    site = [plugin_sites["etl-synthetic"]]
    killed = run_subprocess("run", str(path), env={**with_plugins(site), "ETL_CRASH_AT": "after_batch:2"})
    assert killed.exit_code == -signal.SIGKILL
    assert (tmp_path / ".etl" / "locks" / "slow.lock").exists()
    with duckdb.connect(str(tmp_path / "slow.duckdb"), read_only=True) as con:
        [(committed,)] = con.execute("select count(*) from ohlcv").fetchall()
    assert 0 < committed < 24
    rerun = run_subprocess("run", str(path), env=with_plugins(site))
    assert rerun.exit_code == 0, rerun.stderr
    assert f"{24 - committed} rows" in rerun.stdout
    with duckdb.connect(str(tmp_path / "slow.duckdb"), read_only=True) as con:
        assert con.execute("select count(*), count(distinct ts) from ohlcv").fetchall() == [(24, 24)]
