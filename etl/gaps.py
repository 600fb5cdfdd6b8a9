"""Gap detection: bars the timeframe (or the market's calendar) says should exist but were not loaded.

Gaps are reported, never filled: an exchange's maintenance window is a fact about the data, and a fake
bar would be a lie in every backtest that reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .timeframes import from_ms

if TYPE_CHECKING:
    import polars as pl

    from .base import Source, Stream


class Gap(NamedTuple):
    start: int
    end: int
    bars: int


def find_gaps(ts_ms: pl.Series, previous: int | None, step: int) -> list[Gap]:
    """Missing grid bars between consecutive loaded bars (and after ``previous``, the last bar loaded before)."""
    import polars as pl

    ts = ts_ms.unique().sort()
    if previous is not None:
        ts = pl.concat([pl.Series([previous], dtype=pl.Int64), ts.filter(ts > previous)])
    frame = pl.DataFrame({"ts": ts}).with_columns(pl.col("ts").shift(1).alias("prev"))
    holes = frame.filter(pl.col("ts") - pl.col("prev") > step)
    return [
        Gap(prev + step, current, (current - prev) // step - 1)
        for current, prev in holes.select("ts", "prev").iter_rows()
    ]


def on_calendar(gaps: list[Gap], source: Source, stream: Stream) -> list[Gap]:
    """Keep only the part of each gap where the source's calendar expects bars (a holiday is no gap)."""
    kept = []
    for gap in gaps:
        expected = source.trading_bars(stream, gap.start, gap.end)
        if expected is None:
            kept.append(gap)
        elif len(expected):
            first, last = expected.min(), expected.max()
            step = (gap.end - gap.start) // max(gap.bars, 1)
            kept.append(Gap(_ms(first), _ms(last) + step, len(expected)))
    return kept


def _ms(value: object) -> int:
    return int(value.timestamp() * 1000)  # type: ignore[attr-defined]


def describe(gap: Gap) -> str:
    return f"{from_ms(gap.start):%Y-%m-%d %H:%M} .. {from_ms(gap.end):%Y-%m-%d %H:%M} ({gap.bars} bars)"
