"""Warm-up counted in rows: the last N rows of a stream before a time, however many bars are missing.

A transform that needs 418 bars of history needs 418 rows, not 418 bar-lengths of time: real series miss
bars (a minute without a trade, a venue's maintenance), and a warm-up measured in time then holds too few
rows, so windowed features come out null and recursive ones drift from a one-shot load. The runner first
reads the time the rows would take without holes (usually enough, and in the same read as the window), then
asks ``rows_before`` for the shortfall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .timeframes import DAY, ts_literal

if TYPE_CHECKING:
    import polars as pl

    from .base import Source, Stream

# Paging backwards stops once this much time (or 16 warm-ups' worth, if longer) has held no row at all:
# the series had not started yet. A venue's outage is hours, not a month.
EMPTY_SPAN_MS = 30 * DAY


def rows_before(source: Source, stream: Stream, before: int, rows: int,
                prepare: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame | None:
    """The last ``rows`` rows of ``stream`` with ``ts < before``, ascending; fewer where the series starts
    later. ``prepare`` brings a source's frame into the dataset schema (``ts`` as a datetime)."""
    import polars as pl

    direct = source.history(stream, before, rows)
    if direct is not None:
        return _last(_gather(direct, prepare, pl.col("ts") < ts_literal(before)), rows)
    step = source.row_interval_ms(stream)
    span, end, have, empty = max(rows, 1) * step, before, 0, 0
    found: list[pl.DataFrame] = []
    while have < rows and end > 0 and empty < max(EMPTY_SPAN_MS, 16 * rows * step):
        start = max(end - span, 0)
        window = (pl.col("ts") >= ts_literal(start)) & (pl.col("ts") < ts_literal(end))
        frame = _gather(source.fetch(stream, start, end), prepare, window)
        if frame is not None:
            found.append(frame)
            have += frame.height
            empty = 0
        else:
            empty += end - start
        end, span = start, span * 2
    return _last(pl.concat(found[::-1], how="diagonal_relaxed"), rows) if found else None


def _gather(frames: Iterable[pl.DataFrame], prepare: Callable[[pl.DataFrame], pl.DataFrame],
            keep: pl.Expr) -> pl.DataFrame | None:
    import polars as pl

    kept = [prepare(frame).filter(keep) for frame in frames if frame.height]
    kept = [frame for frame in kept if frame.height]
    return pl.concat(kept, how="diagonal_relaxed") if kept else None


def _last(frame: pl.DataFrame | None, rows: int) -> pl.DataFrame | None:
    if frame is None:
        return None
    if not frame["ts"].is_sorted():
        frame = frame.sort("ts", maintain_order=True)
    return frame.tail(rows)
