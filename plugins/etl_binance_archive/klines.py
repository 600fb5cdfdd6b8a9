"""A kline zip as the rows the ``binance`` REST source yields for the same bars."""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import TYPE_CHECKING

from etl_files.binance import epoch_ms, scan_klines

from .store import Unusable

if TYPE_CHECKING:
    import polars as pl


def read_zip(body: bytes, key: str) -> pl.DataFrame:
    """The zip's one CSV, with ``ts`` in epoch ms; ``Unusable`` if it cannot be read (a zip can be broken
    and still match its checksum: binance-public-data issues 24, 435, 469)."""
    import polars as pl

    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = archive.namelist()
            if len(names) != 1:
                raise Unusable(key, "corrupt", f"holds {len(names)} files, not one CSV")
            data = archive.read(names[0])
        return scan_klines(data).with_columns(epoch_ms(pl.col("ts"))).collect()
    except (zipfile.BadZipFile, zlib.error, EOFError, pl.exceptions.PolarsError) as exc:
        raise Unusable(key, "corrupt", f"unreadable: {type(exc).__name__}: {exc}") from None


def without_repeats(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per open time, ascending (some archive files repeat rows); the last copy wins, as an upsert would."""
    steps = frame["ts"].diff()
    if frame.height < 2 or steps.min() > 0:  # strictly ascending: no repeat (the usual file, checked cheaply)
        return frame
    return frame.unique("ts", keep="last", maintain_order=True).sort("ts")
