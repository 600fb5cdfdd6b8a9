"""Bybit's ``/v5/market/account-ratio`` rows as the ``positioning`` dataset.

Bybit gives two shares of the accounts holding a position, ``buyRatio`` (long) and ``sellRatio`` (short),
summing to about 1, and no ratio (``../shared/wire-formats-2.md`` C.8). ``long_account`` and
``short_account`` are those shares, as Binance's fields of the same names are; ``long_short_ratio`` is
``buyRatio / sellRatio`` (Binance's ``longShortRatio`` is that same quotient), null when ``sellRatio`` is 0
rather than infinite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def positioning_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows ``{"symbol", "buyRatio", "sellRatio", "timestamp"}`` (all text) as ``ts`` and the three shares."""
    import polars as pl

    raw = pl.from_dicts(rows, schema={"timestamp": pl.String, "buyRatio": pl.String, "sellRatio": pl.String})
    long, short = pl.col("buyRatio").cast(pl.Float64), pl.col("sellRatio").cast(pl.Float64)
    return raw.select(
        pl.col("timestamp").cast(pl.Int64).alias("ts"),
        pl.when(short != 0).then(long / short).alias("long_short_ratio"),
        long.alias("long_account"), short.alias("short_account"),
    )
