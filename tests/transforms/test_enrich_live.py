"""Held bars under ``etl stream``: a stream followed live feeds one execution batch after batch, so the bars
enrich held wait in it and are stored with the first batch after their inputs arrive; past ``batch_rows`` of
them the hold sticks for the rest of the unit, and the next run computes them.

The execution is fed here as the live follower feeds it (``Execution.feed``, one frame at a time).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from enrich_helpers import MINUTE, START, inputs, store, until
from test_enrich import END, SINK, enrich, expected
from transform_helpers import candles, pipeline, write_input

from etl import config
from etl.base import Stream
from etl.report import Tally
from etl.testing.checks import check_same_values
from etl.unit import Batch, Execution, SourcePool, WorkUnit


def execution(folder: Path, batch_rows: int) -> Execution:
    spec = config.load(pipeline(folder, [enrich()])).pipelines["test"]
    unit = WorkUnit("test", spec.source, spec.transforms, Stream("ohlcv", "BTC", "1m"), START, END, 0, 0, batch_rows,
                    folder, folder / ".etl", sinks=spec.sinks)
    return Execution(unit, SourcePool(), Tally())


def held_rows(batches: list[Batch]) -> int:
    """The run summary's ``held rows``: what the batches' tallies add up to."""
    return sum(batch.tally.counters.get("held_rows", 0) for batch in batches)


def test_held_bars_are_stored_once_their_inputs_arrive(tmp_path: Path) -> None:
    bars, frames = candles(900), inputs(START, END + 30 * MINUTE)
    store(tmp_path, SINK, until(frames, START + 400 * MINUTE))
    write_input(tmp_path, bars.head(1))
    follower = execution(tmp_path, 1000)

    (first,) = follower.feed([bars.head(600)], 1)
    assert first.held and first.next_ms <= START + 400 * MINUTE
    assert first.frame.height == (first.next_ms - START) // MINUTE
    assert held_rows([first]) == 600 - first.frame.height

    store(tmp_path, SINK, frames)
    (second,) = follower.feed([bars.slice(600, 300)], 1)
    assert not second.held and second.next_ms == START + 900 * MINUTE
    assert held_rows([first, second]) == 0
    stored = pl.concat([first.frame, second.frame])
    check_same_values(stored, expected(bars, frames).select(stored.columns), "ohlcv/BTC/1m", 1e-12)


def test_a_hold_longer_than_batch_rows_sticks(tmp_path: Path) -> None:
    bars, frames = candles(900), inputs(START, END + 30 * MINUTE)
    store(tmp_path, SINK, until(frames, START + 100 * MINUTE))
    write_input(tmp_path, bars.head(1))
    follower = execution(tmp_path, 150)

    (first,) = follower.feed([bars.head(200)], 1)
    (second,) = follower.feed([bars.slice(200, 200)], 1)  # now more than 150 rows wait: the hold sticks
    assert first.held and second.held and second.next_ms == first.next_ms and not second.frame.height
    store(tmp_path, SINK, frames)
    later = [batch for start in (400, 600) for batch in follower.feed([bars.slice(start, 200)], 1)]
    assert all(batch.held and batch.next_ms == first.next_ms and not batch.frame.height for batch in later)
    assert held_rows([first, second, *later]) == 800 - first.frame.height
