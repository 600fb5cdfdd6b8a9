"""Shared by the scale-out tests: a real Dask cluster (``dask scheduler`` and ``dask worker`` processes on
127.0.0.1, started here) and a market of CSV files for the ``files`` source."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

SYMBOLS = ("BTC", "ETH", "SOL", "XRP")
BARS = 6_000
START_MS = 1_704_067_200_000  # 2024-01-01


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(extra_path: list[str] | None = None, **variables: str) -> dict[str, str]:
    """This test process's environment and import path, for the cluster's processes (which run in ``/``, so
    the current folder shadows no installed package's metadata)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*(extra_path or []), *sys.path]), **variables}


@dataclass
class DaskCluster:
    """A scheduler and its workers, each a process of its own; ``kill_worker`` SIGKILLs one."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add_worker(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1", "--no-nanny",
             "--no-dashboard", "--host", "127.0.0.1"],
            env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers.append(worker)
        return worker

    def wait_for(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=20) as client:
            client.wait_for_workers(count, timeout=60)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            process.kill()
            process.wait(10)


def start_cluster(workers: list[dict[str, str]]) -> DaskCluster:
    port = free_port()
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"], env=environment(), cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cluster = DaskCluster(f"tcp://127.0.0.1:{port}", scheduler)
    try:
        for env in workers:
            cluster.add_worker(env)
        cluster.wait_for(len(workers))
    except Exception:
        cluster.stop()
        raise
    return cluster


def write_market(folder: Path) -> Path:
    """CSV files of 1m candles for four symbols, with a few minutes missing."""
    folder.mkdir()
    for number, symbol in enumerate(SYMBOLS):
        rng = np.random.default_rng(number)
        close = 100.0 * (number + 1) * np.exp(np.cumsum(rng.normal(0, 0.002, BARS)))
        frame = pl.DataFrame({
            "ts": START_MS + np.arange(BARS, dtype=np.int64) * 60_000,
            "open": np.concatenate([[close[0]], close[:-1]]), "close": close,
            "volume": rng.gamma(2.0, 50.0, BARS),
        }).with_columns(high=pl.max_horizontal("open", "close") * 1.001, low=pl.min_horizontal("open", "close") * 0.999)
        frame.filter(pl.Series(rng.random(BARS) > 0.02)).write_csv(folder / f"{symbol}.csv")
    return folder


def pipeline_file(folder: Path, market: Path, **settings: Any) -> Path:
    from etl.testing import single_pipeline, write_pipeline

    source = {"plugin": "files", "path": str(market / "{symbol}.csv"), "symbols": list(SYMBOLS),
              "timeframes": ["1m"], "start": "2024-01-01", "batch_rows": 1_000}
    sinks = [{"plugin": "duckdb", "path": "market.duckdb"}, {"plugin": "parquet", "path": "lake"}]
    transforms = [{"plugin": "validate"}, {"plugin": "features", "include": ["rsi_14", "sma_20", "atr_14"]}]
    data = single_pipeline(source, sinks, transforms, name="m", batch_rows=1_000, **settings)
    return write_pipeline(folder, data)
