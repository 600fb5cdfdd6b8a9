"""Gap detection: bars the timeframe (or the market's calendar) says should exist but were not loaded.

Gaps are reported, never filled: an exchange's maintenance window is a fact about the data, and a fake
bar would be a lie in every backtest that reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

from .timeframes import next_bar, number_expr

if TYPE_CHECKING:
    import polars as pl

    from .stream import Stream


class Gap(NamedTuple):
    start: int
    end: int
    bars: int


def find_gaps(ts_ms: pl.Series, previous: int | None, timeframe: str) -> list[Gap]:
    """Missing grid bars between consecutive loaded bars (and after ``previous``, the last bar loaded before)."""
    import polars as pl

    ts = ts_ms if ts_ms.is_sorted() else ts_ms.sort()
    if previous is not None:
        ts = pl.concat([pl.Series([previous], dtype=pl.Int64), ts.filter(ts > previous)])
    bars = pl.DataFrame({"ts": ts}).with_columns(number_expr(pl.col("ts"), timeframe).alias("bar"))
    widest = bars.select(pl.col("bar").diff().max()).item()
    if widest is None or widest <= 1:  # not one bar missing: the usual case, answered without the shifted copy
        return []
    holes = bars.with_columns(pl.all().shift(1).name.suffix("_before")).filter(pl.col("bar") - pl.col("bar_before") > 1)
    return [
        Gap(next_bar(before, timeframe), current, bar - bar_before - 1)
        for current, bar, before, bar_before in holes.select("ts", "bar", "ts_before", "bar_before").iter_rows()
    ]


class Calendar(Protocol):
    """What ``on_calendar`` needs of a source (``etl.Source`` has it), named here so gaps need not import base."""

    def trading_bars(self, stream: Stream, start: int, end: int) -> pl.Series | None: ...


def on_calendar(gaps: list[Gap], source: Calendar, stream: Stream) -> list[Gap]:
    """Keep only the part of each gap where the source's calendar expects bars (a holiday is no gap)."""
    kept = []
    for gap in gaps:
        expected = source.trading_bars(stream, gap.start, gap.end)
        if expected is None:
            kept.append(gap)
        elif len(expected):
            first, last = expected.min(), expected.max()
            kept.append(Gap(_ms(first), next_bar(_ms(last), stream.timeframe or ""), len(expected)))
    return kept


def _ms(value: object) -> int:
    return int(value.timestamp() * 1000)  # type: ignore[attr-defined]

