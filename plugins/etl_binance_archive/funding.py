"""A fundingRate zip (``calc_time,funding_interval_hours,last_funding_rate``, futures only, monthly) as the
``binance`` REST source's funding rows: ``ts`` the settlement time, ``funding_rate``. The archive has no mark
price: ``mark_price``, which the REST source adds, is left out (null in a table that has it; a sink that
replaces rows by key replaces a REST row's mark price with that null)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from etl_files.binance import epoch_ms, has_header

from .klines import member, read_errors, unreadable, without_repeats

if TYPE_CHECKING:
    import polars as pl


def frames(body: bytes, key: str) -> Iterator[tuple[pl.DataFrame, int]]:
    """The month's settlements, one per time, and how many repeated rows were dropped."""
    import polars as pl

    try:
        data = member(body, key)
        schema = {"ts": pl.Int64, "funding_interval_hours": pl.Int64, "funding_rate": pl.Float64}
        raw = pl.read_csv(data, has_header=False, skip_rows=int(has_header(data)), schema=schema)
    except read_errors() as exc:
        raise unreadable(key, exc) from None
    frame = raw.select(epoch_ms(pl.col("ts")), "funding_rate")
    unique = without_repeats(frame)
    yield unique, frame.height - unique.height
