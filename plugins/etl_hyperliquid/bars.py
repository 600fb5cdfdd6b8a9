"""Candles from mid prices: the archive has book snapshots but no trades, so bars are built from mids.

``open``/``close`` are the first/last mid of the bar, ``high``/``low`` the extremes among its snapshots;
``volume`` is null (no trades to count) and ``snapshots`` says how many book snapshots made the bar,
so a bar thinned by a missing archive hour can be told apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.timeframes import floor_ts, timeframe_ms

if TYPE_CHECKING:
    import polars as pl


def bar_start(timeframe: str) -> pl.Expr:
    """The start of the ``timeframe`` bar holding each ``ts`` (epoch ms), on the core's bar grid."""
    import polars as pl

    step = timeframe_ms(timeframe)
    offset = floor_ts(0, timeframe) % step
    return (pl.col("ts") - offset) // step * step + offset


def mid_bars(snapshots: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """OHLC of ``mid`` per bar from time-ordered snapshots (``ts`` epoch ms)."""
    import polars as pl

    mid = pl.col("mid")
    return (
        snapshots.group_by(bar_start(timeframe).alias("bar"), maintain_order=True)
        .agg(open=mid.first(), high=mid.max(), low=mid.min(), close=mid.last(), snapshots=pl.len().cast(pl.Int64))
        .select(ts="bar", open="open", high="high", low="low", close="close",
                volume=pl.lit(None, pl.Float64), snapshots="snapshots")
    )
