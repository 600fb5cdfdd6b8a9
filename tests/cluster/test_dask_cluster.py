"""``--cluster``: units of work run on a real Dask cluster (a scheduler and worker processes started by the
test), the driver commits, and every sink holds exactly what a local run stores."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import duckdb
import polars as pl
from cluster_helpers import SYMBOLS, environment, free_port, pipeline_file, start_cluster
from polars.testing import assert_frame_equal

from etl.testing import PipelineRun, run_cli, run_subprocess
from etl.testing.checks import check_same_values
from etl.timeframes import iso, parse_time


def stored(folder: Path) -> dict[str, pl.DataFrame]:
    """Both sinks' rows, in one order."""
    with duckdb.connect(str(folder / "market.duckdb"), read_only=True) as connection:
        table = connection.sql("SELECT * FROM ohlcv ORDER BY symbol, ts").pl()
        lake = connection.sql(
            f"SELECT * EXCLUDE (month) FROM read_parquet('{folder}/lake/ohlcv/**/*.parquet', hive_partitioning=true, "
            "union_by_name=true) ORDER BY symbol, ts").pl()
    return {"duckdb": table, "parquet": lake.select(table.columns)}


def local_run(tmp_path: Path, market: Path) -> dict[str, pl.DataFrame]:
    path = pipeline_file(tmp_path / "local", market)
    result = run_cli("backfill", str(path), "--pipeline", "m", "--start", "2024-01-01", "--end", "2024-01-06")
    assert result.exit_code == 0, str(result)
    return stored(tmp_path / "local")


def assert_same(actual: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]) -> None:
    for sink, rows in expected.items():
        assert_frame_equal(actual[sink], rows, check_exact=True)


def assert_close(actual: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]) -> None:
    """The same rows; recursive features (RSI, ATR) within 1e-12 relative, as after any resumed run, whose
    warm-up starts their smoothing from another seed."""
    for sink, rows in expected.items():
        for symbol in SYMBOLS:
            check_same_values(actual[sink].filter(pl.col("symbol") == symbol), rows.filter(pl.col("symbol") == symbol),
                              f"{sink} ohlcv/{symbol}/1m")


def backfill(path: Path, cluster: str, **env: str) -> PipelineRun:
    return run_subprocess("backfill", str(path), "--pipeline", "m", "--start", "2024-01-01", "--end", "2024-01-06",
                          "--cluster", cluster, env=env, path=path, timeout=120)


def test_a_backfill_on_the_cluster_stores_what_a_local_run_stores(dask_cluster, market, tmp_path: Path) -> None:
    result = backfill(pipeline_file(tmp_path / "cluster", market), dask_cluster.address)

    assert result.exit_code == 0, str(result)
    assert result.summary.startswith(f"etl backfill ok: {len(SYMBOLS)} streams, ")
    assert_same(stored(tmp_path / "cluster"), local_run(tmp_path, market))


def test_settings_cluster_and_local_workers(market, tmp_path: Path) -> None:
    """``[settings] cluster = "local:2"`` starts two local worker processes; the rows are the same."""
    path = pipeline_file(tmp_path / "cluster", market)
    path.write_text('[settings]\ncluster = "local:2"\n\n' + path.read_text())
    result = run_subprocess("backfill", str(path), "--pipeline", "m", "--start", "2024-01-01", "--end",
                            "2024-01-06", timeout=120)

    assert result.exit_code == 0, str(result)
    assert '"event": "cluster"' in result.stderr and '"workers": 2' in result.stderr
    assert_same(stored(tmp_path / "cluster"), local_run(tmp_path, market))


def test_a_worker_killed_mid_unit_costs_only_its_units(market, tmp_path: Path) -> None:
    """One worker SIGKILLs itself at its third batch; Dask runs its unit again on the other worker."""
    cluster = start_cluster([environment(ETL_CRASH_AT="worker_batch:3"), environment()])
    try:
        result = backfill(pipeline_file(tmp_path / "cluster", market), cluster.address)
        assert result.exit_code == 0, str(result)
        assert cluster.workers[0].wait(10) == -signal.SIGKILL, "the first worker died mid-unit"
    finally:
        cluster.stop()
    assert_same(stored(tmp_path / "cluster"), local_run(tmp_path, market))


def test_a_driver_killed_mid_run_resumes_to_the_same_rows(dask_cluster, market, tmp_path: Path) -> None:
    path = pipeline_file(tmp_path / "cluster", market, commit_rows=1_000)
    killed = backfill(path, dask_cluster.address, ETL_CRASH_AT="after_batch:3")
    assert killed.exit_code == -signal.SIGKILL

    resumed = run_subprocess("backfill", str(path), "--resume", "--cluster", dask_cluster.address, timeout=120)
    assert resumed.exit_code == 0, str(resumed)
    assert_close(stored(tmp_path / "cluster"), local_run(tmp_path, market))


def test_workers_with_another_version_are_refused(market, tmp_path: Path) -> None:
    """A worker whose market-etl is 9.9.9 (a dist-info first on its path): exit 2 naming the package."""
    other = tmp_path / "other"
    (other / "market_etl-9.9.9.dist-info").mkdir(parents=True)
    (other / "market_etl-9.9.9.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: market-etl\n"
                                                                     "Version: 9.9.9\n")
    cluster = start_cluster([environment([str(other)])])
    try:
        result = backfill(pipeline_file(tmp_path / "cluster", market), cluster.address)
    finally:
        cluster.stop()
    assert result.exit_code == 2, str(result)
    assert "workers run other package versions than this driver: market-etl 0.1.0 here, 9.9.9 on tcp://" \
        in result.stderr
    assert not (tmp_path / "cluster" / "market.duckdb").exists(), "nothing ran"


def test_an_unreachable_scheduler_is_exit_2_naming_it(market, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    began = time.monotonic()
    result = backfill(pipeline_file(tmp_path / "cluster", market), address)

    assert result.exit_code == 2, str(result)
    assert f"cannot reach the Dask scheduler at {address} within 10s" in result.stderr
    assert time.monotonic() - began < 30


def test_a_stream_failing_on_a_worker_fails_alone(dask_cluster, market, tmp_path: Path) -> None:
    (market / "XRP.csv").unlink()
    result = backfill(pipeline_file(tmp_path / "cluster", market), dask_cluster.address)

    assert result.exit_code == 1, str(result)
    assert "FAILED m ohlcv/XRP/1m: files: no file matches" in result.stdout
    rows = stored(tmp_path / "cluster")["duckdb"]
    assert sorted(set(rows["symbol"])) == ["BTC", "ETH", "SOL"]


def contiguous(entries: dict[str, dict], label: str) -> int:
    """Where the chunks of 1,000 minutes from 2024-01-01 are committed without a hole."""
    low = 1_704_067_200_000
    while (entry := entries.get(f"{label}@{iso(low)}")) is not None and entry["next_ms"] >= low + 60_000_000:
        low += 60_000_000
    return low if entry is None else entry["next_ms"]


def test_a_chunked_backfill_spreads_streams_over_workers_and_resumes_by_chunk(dask_cluster, market,
                                                                             tmp_path: Path) -> None:
    """chunk = 1000 bars: each stream's 7,200 minutes (6,000 with data) become eight units with their own warm-up
    and checkpoint entry; a driver killed mid-run resumes only the unfinished chunks, and every sink matches a
    local run."""
    path = pipeline_file(tmp_path / "cluster", market, chunk=1_000, commit_rows=1_000)
    killed = backfill(path, dask_cluster.address, ETL_CRASH_AT="after_batch:9")
    assert killed.exit_code == -signal.SIGKILL
    [record] = (tmp_path / "cluster" / ".etl" / "backfills").glob("*.json")
    entries = json.loads(record.read_text())["streams"]
    chunks = {key: entry for key, entry in entries.items() if "@" in key}
    assert chunks, "checkpointed per chunk"
    for symbol in {key.split("/")[1] for key in chunks}:
        assert entries[f"ohlcv/{symbol}/1m"]["next_ms"] == contiguous(entries, f"ohlcv/{symbol}/1m"), \
            "a stream's checkpoint stops at its first unfinished chunk"

    resumed = run_subprocess("backfill", str(path), "--resume", "--cluster", dask_cluster.address, "-v",
                             timeout=120)
    assert resumed.exit_code == 0, str(resumed)
    ran = resumed.stderr.count('"event": "unit ran"')
    assert ran < 4 * 6, "finished chunks are not fetched again"
    assert_close(stored(tmp_path / "cluster"), local_run(tmp_path, market))
    done = json.loads(record.read_text())
    assert len([key for key in done["streams"] if "@" in key]) == 4 * 8 and done["status"] == "done"
    assert {done["streams"][f"ohlcv/{symbol}/1m"]["next_ms"] for symbol in SYMBOLS} == {parse_time("2024-01-06")}, \
        "every chunk finished (those past the data too, and those whose last minutes are missing), so every " \
        "stream's checkpoint reaches the end"
