"""The unit of work is plain data: it pickles, and another process can execute it to the same batches."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl

from etl import config
from etl.base import Stream
from etl.report import Tally
from etl.unit import SourcePool, WorkUnit, execute

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ohlcv"


def unit_for(path: Path) -> WorkUnit:
    spec = config.load(path).pipelines["u"]
    return WorkUnit("u", spec.source, spec.transforms, Stream("ohlcv", "ETHUSDT", "1h"), 1704067200000,
                    1704067200000 + 100 * 3_600_000, 0, 0, 40, path.parent, path.parent / ".etl")


def batches(unit: WorkUnit) -> list[tuple[int, pl.DataFrame]]:
    sources = SourcePool()
    try:
        return [(batch.next_ms, batch.frame) for batch in execute(unit, sources, Tally())]
    finally:
        sources.close()


def test_work_unit_pickles_and_runs_in_another_process(write_pipeline):
    path = write_pipeline(f"""
        [pipelines.u.source]
        plugin = "files"
        path = "{FIXTURES}/{{symbol}}_{{timeframe}}.csv"
        columns = {{ ts = "timestamp" }}
        batch_rows = 40
        symbols = ["ETHUSDT"]
        timeframes = ["1h"]

        [[pipelines.u.sinks]]
        plugin = "duckdb"
        path = "u.duckdb"
    """)
    unit = unit_for(path)
    assert pickle.loads(pickle.dumps(unit)) == unit
    here = batches(unit)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        there = pool.submit(batches, unit).result()
    assert [n for n, _ in here] == [n for n, _ in there] == [
        1704067200000 + hours * 3_600_000 for hours in (40, 80, 100)
    ]
    for (_, mine), (_, theirs) in zip(here, there, strict=True):
        assert mine.equals(theirs)
    assert sum(frame.height for _, frame in here) == 100
