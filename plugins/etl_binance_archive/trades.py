"""An aggTrades zip as the rows the ``binance`` REST source yields for the same trades, a block at a time.

A day of BTCUSDT holds millions of aggregate trades (a CSV of hundreds of MB): the CSV is inflated and parsed
``BLOCK`` bytes at a time, so memory holds the zip and one block, never the whole table. Spot files have
8 columns (``isBestMatch`` last), ``True``/``False`` and no header; futures files 7 columns, ``true``/``false``
and a header row; spot times are in µs since 2025.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from etl_binance.source import agg_trades_as_trades
from etl_files.binance import epoch_ms, has_header

from .klines import only_member, read_errors, unreadable, without_repeats

if TYPE_CHECKING:
    import polars as pl

BLOCK = 4 * 2**20  # bytes of CSV parsed at once: about 70,000 trades
COLUMNS = ("a", "p", "q", "f", "l", "T", "m", "M")


def frames(body: bytes, key: str) -> Iterator[tuple[pl.DataFrame, int]]:
    """Blocks of trades in id order, each with how many repeated rows it dropped (a row whose id was seen
    already, in this block or an earlier one); ``Unusable`` when the zip breaks.

    The CSV is inflated twice: once to check its CRC-32 (zipfile checks it at the end of the member), then to
    parse it. Damaged bytes can parse as plausible trades, and a block once yielded cannot be taken back: only
    a CSV that cannot be parsed may still fail after some blocks, and its rows so far are sound.
    """
    last_id = -1
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            member = only_member(archive, key)
            with archive.open(member) as csv:
                while csv.read(BLOCK):
                    pass
            with archive.open(member) as csv:
                for block in blocks(csv):
                    raw = parse(block)
                    fresh = without_repeats(raw.filter(raw["a"] > last_id), "a")
                    if fresh.height:
                        last_id = fresh["a"][-1]
                    yield agg_trades_as_trades(fresh), raw.height - fresh.height
    except read_errors() as exc:
        raise unreadable(key, exc) from None


def blocks(csv: IO[bytes], size: int = BLOCK) -> Iterator[bytes]:
    """The CSV's data rows in pieces of about ``size`` bytes that end at a line's end; the header dropped."""
    rest, first = b"", True
    while chunk := csv.read(size):
        data = rest + chunk
        if first and has_header(data):
            data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
        first = False
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        rest = data[cut:]
    if rest.strip():
        yield rest


def parse(block: bytes) -> pl.DataFrame:
    """A block of rows as the REST fields ``a``, ``p``, ``q``, ``T`` (ms), ``m`` (boolean)."""
    import polars as pl

    width = block[: block.find(b"\n") if b"\n" in block else len(block)].count(b",") + 1
    schema = {name: pl.String if name in ("m", "M") else pl.Float64 if name in ("p", "q") else pl.Int64
              for name in COLUMNS[:width]}
    raw = pl.read_csv(block, has_header=False, schema=schema)
    return raw.select("a", "p", "q", epoch_ms(pl.col("T")), pl.col("m").str.to_lowercase() == "true")
