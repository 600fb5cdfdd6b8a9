"""Binance's kline CSVs (data.binance.vision), read the same way by the ``files`` source (``layout = "binance"``)
and the ``binance_archive`` source.

The files hold 12 positional columns, the same as the REST klines. Later files start with a header row,
earlier ones do not; spot files since 2025 count time in microseconds, older ones and futures files in
milliseconds. The column types are declared, so nothing is inferred: a coin-margined file whose volumes are
whole contracts still reads them as floats, and a header row is told apart by its first byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

KLINE_COLUMNS = (
    "ts", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)
DROPPED = ("close_time", "ignore")
_INTEGERS = ("ts", "close_time", "trades")


def kline_schema() -> dict[str, pl.DataType]:
    import polars as pl

    return {name: pl.Int64() if name in _INTEGERS else pl.String() if name == "ignore" else pl.Float64()
            for name in KLINE_COLUMNS}


def has_header(first_bytes: bytes) -> bool:
    """A header row starts with a letter (``open_time``); a data row with the open time's digits."""
    return not first_bytes[:1].isdigit()


def scan_klines(data: Path | bytes) -> pl.LazyFrame:
    """A kline CSV (a file or its bytes) as ``ts`` (the open time as written: ms or µs) and the REST source's
    columns: open, high, low, close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume."""
    import polars as pl

    if isinstance(data, Path):
        with data.open("rb") as handle:
            first = handle.read(1)
    else:
        first = data[:1]
    # The header's names vary (``count`` or ``trades``, coin-margined files differ): skip it, never match it.
    lazy = pl.scan_csv(data, has_header=False, skip_rows=int(has_header(first)), schema=kline_schema())
    return lazy.drop(DROPPED)


def epoch_ms(ts: pl.Expr) -> pl.Expr:
    """Integer epoch time in seconds, milliseconds or microseconds, as milliseconds, row by row.

    Epoch seconds stay below 1e11 until the year 5138, milliseconds below 1e14 until 5138 too, so the
    magnitude tells the unit; one file (or one month of Binance's, at the 2025 switch) may mix them.
    """
    import polars as pl

    magnitude = ts.abs()
    return (
        pl.when(magnitude < 100_000_000_000).then(ts * 1000)
        .when(magnitude < 100_000_000_000_000).then(ts)
        .otherwise(ts // 1000)
    )
