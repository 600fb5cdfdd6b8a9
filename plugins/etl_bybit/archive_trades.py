"""One day file of public.bybit.com's trade archive as the rows of the ``trades`` dataset.

Each row becomes what Bybit's live ``publicTrade`` frame gives for the same trade (``../shared/wire-formats-2.md``
A.2.2, B.6), so archive history and live trades are one row per trade under ``source = "bybit"``:

- ``trade_id`` is ``trdMatchID`` (the UUID the live frame calls ``i``; that the two are the same id is
  UNCONFIRMED: no source shows one trade on both);
- ``side`` is the taker's, lower case (``Buy`` -> ``buy``), as every source's trades are;
- ``ts`` is the ``timestamp`` in seconds with up to four decimals, cut (not rounded) to the millisecond, as
  the live frame's ``T`` in ms would be: read as text, never through a float (``1704067266.484`` times 1000
  is ``1704067266483.9998`` in binary floating point).

A file that does not inflate (gzip checks its CRC-32 and length), lacks a column, holds a value that does not
parse or is empty, another symbol's rows, an unknown side, or a time outside its day is ``Unusable``.
"""

from __future__ import annotations

import gzip
import zlib
from typing import TYPE_CHECKING

from .public import Unusable

if TYPE_CHECKING:
    import polars as pl

COLUMNS = ("timestamp", "symbol", "side", "size", "price", "trdMatchID")


def read_day(body: bytes, key: str, symbol: str, day: int, day_end: int) -> pl.DataFrame:
    """The file's trades: ``ts`` (epoch ms), ``trade_id``, ``price``, ``size``, ``side``, in file order."""
    import polars as pl

    try:
        text = gzip.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise Unusable(key, "corrupt", f"does not inflate: {type(exc).__name__}: {exc}") from None
    try:
        raw = pl.read_csv(text, columns=list(COLUMNS), schema_overrides={name: pl.String for name in COLUMNS})
        frame = raw.select(_millis(pl.col("timestamp")).alias("ts"), pl.col("trdMatchID").alias("trade_id"),
                           pl.col("price").cast(pl.Float64), pl.col("size").cast(pl.Float64),
                           pl.col("side").str.to_lowercase(), pl.col("symbol"))
    except pl.exceptions.PolarsError as exc:
        raise Unusable(key, "corrupt", f"unreadable CSV: {type(exc).__name__}: {str(exc)[:200]}") from None
    _check(frame, key, symbol, day, day_end)
    return frame.drop("symbol")


def _millis(text: pl.Expr) -> pl.Expr:
    """``"1704067266.484"`` -> 1704067266484: whole seconds, and the first three decimals padded with zeros."""
    import polars as pl

    parts = text.str.split_exact(".", 1)
    fraction = parts.struct.field("field_1").fill_null("").str.pad_end(3, "0").str.slice(0, 3)
    return parts.struct.field("field_0").cast(pl.Int64) * 1000 + fraction.cast(pl.Int64)


def _check(frame: pl.DataFrame, key: str, symbol: str, day: int, day_end: int) -> None:
    import polars as pl

    nulls = {name: count for name, count in zip(frame.columns, frame.null_count().row(0), strict=True) if count}
    if nulls:
        raise Unusable(key, "corrupt", f"empty values: {nulls}")
    problems = {
        "rows of another symbol": pl.col("symbol") != symbol,
        "sides other than Buy and Sell": ~pl.col("side").is_in(["buy", "sell"]),
        "times outside its day": (pl.col("ts") < day) | (pl.col("ts") >= day_end),
    }
    for problem, test in problems.items():
        bad = frame.filter(test)
        if bad.height:
            raise Unusable(key, "corrupt", f"{bad.height} {problem}, first {bad.row(0, named=True)}")
