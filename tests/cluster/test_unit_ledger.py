"""The run ledger knows where each unit of work ran and how long it took; ``etl status --units`` shows the last
run's units, on a real Dask cluster and in threads of a local run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
from cluster_helpers import SYMBOLS, pipeline_file

from etl.testing import run_cli, run_subprocess


def unit_lines(path: Path) -> list[list[str]]:
    result = run_cli("status", str(path), "--units")
    assert result.exit_code == 0, str(result)
    header, *lines = result.output.splitlines()
    assert header.split() == ["pipeline", "unit", "window", "worker", "seconds", "rows", "result"]
    return [line.split() for line in lines]


def stored_rows(folder: Path) -> int:
    with duckdb.connect(str(folder / "market.duckdb"), read_only=True) as connection:
        return connection.execute("SELECT count(*) FROM ohlcv").fetchall()[0][0]


def test_a_cluster_run_records_each_unit_with_its_worker_and_seconds(dask_cluster, market, tmp_path: Path) -> None:
    path = pipeline_file(tmp_path, market, chunk=1_000)
    result = run_subprocess("backfill", str(path), "--pipeline", "m", "--start", "2024-01-01", "--end",
                            "2024-01-06", "--cluster", dask_cluster.address, path=path, timeout=120)
    assert result.exit_code == 0, str(result)

    lines = unit_lines(path)
    assert len(lines) == len(SYMBOLS) * 8, "one line per chunk: five days are 7,200 bars, eight chunks of 1,000"
    assert {line[1].split("@")[0] for line in lines} == {f"ohlcv/{symbol}/1m" for symbol in SYMBOLS}
    workers = {line[3] for line in lines}
    assert len(workers) == 2 and all(worker.startswith("tcp://127.0.0.1:") for worker in workers)
    assert all(float(line[4]) > 0 and line[6] == "ok" for line in lines)
    assert sum(int(line[5]) for line in lines) == stored_rows(tmp_path), "every stored row came from a unit"


def test_a_local_run_records_its_units_as_local_and_status_shows_the_last_run(market, tmp_path: Path) -> None:
    path = pipeline_file(tmp_path, market)
    for start, end in (("2024-01-01", "2024-01-03"), ("2024-01-03", "2024-01-05")):
        result = run_cli("backfill", str(path), "--pipeline", "m", "--start", start, "--end", end)
        assert result.exit_code == 0, str(result)

    lines = unit_lines(path)
    assert sorted((line[1], line[2], line[3], line[6]) for line in lines) == sorted(
        (f"ohlcv/{symbol}/1m", "2024-01-03T00:00:00Z..2024-01-05T00:00:00Z", "local", "ok") for symbol in SYMBOLS)
    assert all(float(line[4]) > 0 and int(line[5]) > 0 for line in lines)
    with sqlite3.connect(tmp_path / ".etl" / "ledger.db") as db:
        runs = db.execute("select count(distinct run_id), count(*) from unit_runs").fetchone()
    assert runs == (2, 2 * len(SYMBOLS)), "both runs are in the ledger; status shows the last"
