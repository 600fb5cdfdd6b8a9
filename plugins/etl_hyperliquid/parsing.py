"""Hyperliquid's formats in, polars frames out: REST rows, and the archive's LZ4 files.

Prices and sizes arrive as decimal strings; polars parses them to the nearest Float64, exactly as
Python's ``float`` would. Archive files are decompressed as a stream, a few MiB at a time, and parsed
column-wise: an l2Book line holds 40 price levels, of which only the best bid and ask are wanted, so
they are cut out with literal searches and anchored regexes in polars rather than decoding every line
as JSON. Lines that do not fit that fast path (another key order, another channel, no exchange time)
go through orjson one by one, so an unexpected shape costs speed, never correctness.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.errors import SourceError

if TYPE_CHECKING:
    import polars as pl

CHUNK_BYTES = 16 << 20
# The required columns of the asset_ctxs dataset first, then its extras (which can be empty).
ASSET_CTX_NUMBERS = (
    "funding", "open_interest", "mark_px", "oracle_px", "mid_px", "premium", "impact_bid_px", "impact_ask_px",
    "prev_day_px", "day_ntl_vlm",
)
_TOP_FIELDS = ("bid_px", "bid_sz", "ask_px", "ask_sz")
_BOOK_START = '"levels":[['
_FIRST_LEVEL = r'^\{[^}]*?"%s":"([^"]*)"'
_LEVEL_CHARS = 128  # a first level object is ~40 characters; a longer one takes the slow path


class CorruptObject(ValueError):
    """An archive file that cannot be what it claims to be: bad LZ4 frame, truncated, or unparseable lines."""


def to_float(frame: pl.DataFrame, columns: Sequence[str], where: str) -> pl.DataFrame:
    """Parse decimal-string columns to Float64; a value that is not a number is an error naming its row."""
    import polars as pl

    try:
        return frame.with_columns(pl.col(list(columns)).cast(pl.Float64))
    except pl.exceptions.InvalidOperationError:
        for column in columns:
            parsed = frame[column].cast(pl.Float64, strict=False)
            bad = frame.filter(parsed.is_null() & frame[column].is_not_null())
            if bad.height:
                raise SourceError(f"{where}: {column} is not a number in {bad.row(0, named=True)}") from None
        raise


def within(frame: pl.DataFrame, start: int, end: int) -> pl.DataFrame:
    """Rows with ``start <= ts < end`` (epoch ms): APIs answer with whole bars around the bounds."""
    import polars as pl

    return frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))


def candles(rows: list[dict[str, Any]], now_ms: int, where: str) -> pl.DataFrame:
    """``candleSnapshot`` rows -> ohlcv columns plus ``trades``; a candle still forming (T >= now) is dropped."""
    import polars as pl

    schema = {"t": pl.Int64, "T": pl.Int64, "o": pl.String, "h": pl.String, "l": pl.String, "c": pl.String,
              "v": pl.String, "n": pl.Int64}
    frame = pl.DataFrame(rows, schema=schema, orient="row").filter(pl.col("T") < now_ms)
    frame = frame.select(
        ts=pl.col("t"), open=pl.col("o"), high=pl.col("h"), low=pl.col("l"), close=pl.col("c"),
        volume=pl.col("v"), trades=pl.col("n"),
    )
    return to_float(frame, ("open", "high", "low", "close", "volume"), where)


def funding(rows: list[dict[str, Any]], where: str) -> pl.DataFrame:
    """``fundingHistory`` rows -> ts (settlement time, ms as given), funding_rate, premium."""
    import polars as pl

    schema = {"time": pl.Int64, "fundingRate": pl.String, "premium": pl.String}
    frame = pl.DataFrame(rows, schema=schema, orient="row").select(
        ts=pl.col("time"), funding_rate=pl.col("fundingRate"), premium=pl.col("premium")
    )
    return to_float(frame, ("funding_rate", "premium"), where)


def line_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Decompress an LZ4 frame file as a stream, yielding runs of whole lines."""
    import lz4.frame

    tail = b""
    with lz4.frame.open(path, "rb") as handle:
        while True:
            try:
                block = handle.read(chunk_bytes)
            except (EOFError, RuntimeError) as exc:
                raise CorruptObject(f"not a complete LZ4 frame ({exc})") from None
            if not block:
                break
            block = tail + block
            cut = block.rfind(b"\n") + 1
            tail = block[cut:]
            if cut:
                yield block[:cut]
    if tail.strip():
        yield tail


def l2_top(path: Path) -> pl.DataFrame:
    """Best bid and ask of every l2Book snapshot in an hourly archive file, in file order.

    ``ts`` is the exchange time (``raw.data.time``, epoch ms); lines of other channels are skipped.
    """
    import polars as pl

    frames = []
    first_line = 1
    for chunk in line_chunks(path):
        lines = _lines(chunk)
        frames.append(_top_of_book(lines, first_line))
        first_line += lines.height
    if not frames:
        return _with_mid(pl.DataFrame(schema={"ts": pl.Int64, **dict.fromkeys(_TOP_FIELDS, pl.Float64)}))
    return _with_mid(pl.concat(frames))


def _lines(chunk: bytes) -> pl.DataFrame:
    import polars as pl

    # \x1f cannot occur in JSON text (control characters must be escaped), so every line is one field.
    try:
        return pl.read_csv(io.BytesIO(chunk), has_header=False, separator="\x1f", quote_char=None,
                           new_columns=["line"], schema={"line": pl.String})
    except pl.exceptions.PolarsError as exc:
        raise CorruptObject(f"not line-delimited JSON ({_first_line(exc)})") from None


def _top_of_book(lines: pl.DataFrame, first_line: int) -> pl.DataFrame:
    import polars as pl

    line = pl.col("line")
    located = lines.with_row_index("number", first_line).with_columns(
        book=line.str.find(_BOOK_START, literal=True) + len(_BOOK_START),
        asks=line.str.find("],[", literal=True) + 3,
        is_book=line.str.contains('"channel":"l2Book"', literal=True),
    )
    bids, asks = line.str.slice(pl.col("book"), _LEVEL_CHARS), line.str.slice(pl.col("asks"), _LEVEL_CHARS)
    fast = located.select(
        "number",
        "line",
        ts=line.str.extract(r'"data":\{[^{]*?"time":(\d+)', 1).cast(pl.Int64, strict=False),
        bid_px=bids.str.extract(_FIRST_LEVEL % "px", 1),
        bid_sz=bids.str.extract(_FIRST_LEVEL % "sz", 1),
        ask_px=asks.str.extract(_FIRST_LEVEL % "px", 1),
        ask_sz=asks.str.extract(_FIRST_LEVEL % "sz", 1),
        is_book=pl.col("is_book") & (pl.col("asks") > pl.col("book")),
        no_bids=bids.str.starts_with("]"),
        no_asks=asks.str.starts_with("]"),
    )
    parsed = (
        pl.col("is_book")
        & pl.col("ts").is_not_null()
        & (pl.col("no_bids") | (pl.col("bid_px").is_not_null() & pl.col("bid_sz").is_not_null()))
        & (pl.col("no_asks") | (pl.col("ask_px").is_not_null() & pl.col("ask_sz").is_not_null()))
    )
    good = fast.filter(parsed.fill_null(False)).select("number", "ts", *_TOP_FIELDS)
    odd = fast.filter(~parsed.fill_null(False) & (line.str.strip_chars() != ""))
    if odd.height:
        slow = [_top_of_book_slowly(text, number) for number, text in odd.select("number", "line").iter_rows()]
        rows = [row for row in slow if row is not None]
        good = pl.concat([good, pl.DataFrame(rows, schema=good.schema, orient="row")]).sort("number")
    try:
        return good.select("ts", pl.col(_TOP_FIELDS).cast(pl.Float64))
    except pl.exceptions.InvalidOperationError:
        for field in _TOP_FIELDS:
            bad = good.filter(good[field].cast(pl.Float64, strict=False).is_null() & good[field].is_not_null())
            if bad.height:
                raise CorruptObject(f"line {bad['number'][0]}: {field} {bad[field][0]!r} is not a number") from None
        raise


def _top_of_book_slowly(text: str, number: int) -> tuple[Any, ...] | None:
    """The JSON-decoding path for lines the fast path did not recognise; None for other channels."""
    import orjson

    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CorruptObject(f"line {number} is not JSON ({exc})") from None
    raw = record.get("raw") if isinstance(record, dict) else None
    if isinstance(raw, dict) and raw.get("channel") not in (None, "l2Book"):
        return None
    try:
        data = raw["data"]
        bids, asks = data["levels"]
        ts = data.get("time")
        if ts is None:
            ts = _capture_ms(record["time"])
        bid, ask = (bids[0] if bids else {}), (asks[0] if asks else {})
        return (number, int(ts), bid.get("px"), bid.get("sz"), ask.get("px"), ask.get("sz"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptObject(f"line {number} is not an l2Book snapshot ({type(exc).__name__}: {exc})") from None


def _capture_ms(text: str) -> int:
    """The capture time of an archive line (ISO, nanoseconds, UTC without suffix) in epoch ms."""
    from datetime import UTC

    value = datetime.fromisoformat(text)
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)


def _with_mid(frame: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return frame.with_columns(
        mid=(pl.col("bid_px") + pl.col("ask_px")) / 2,
        spread=pl.col("ask_px") - pl.col("bid_px"),
    )


def asset_ctxs(path: Path, coin: str) -> pl.DataFrame:
    """One coin's rows of a daily asset-context CSV: ts (epoch ms) and the numbers (empty or ``null`` -> null)."""
    import polars as pl

    header: list[str] | None = None
    frames = []
    for chunk in line_chunks(path):
        if header is None:
            first, _, chunk = chunk.partition(b"\n")
            header = first.decode("utf-8", "replace").strip().split(",")
            missing = [name for name in ("time", "coin", *ASSET_CTX_NUMBERS) if name not in header]
            if missing:
                raise CorruptObject(f"header lacks column(s) {', '.join(missing)}: {first[:200]!r}")
        if not chunk.strip():
            continue
        try:
            frame = pl.read_csv(io.BytesIO(chunk), has_header=False, new_columns=header,
                                schema=dict.fromkeys(header, pl.String), null_values=["", "null"])
        except pl.exceptions.PolarsError as exc:
            raise CorruptObject(f"not CSV ({_first_line(exc)})") from None
        frames.append(frame.filter(pl.col("coin") == coin))
    columns = ("time", *ASSET_CTX_NUMBERS)
    if not frames:
        return pl.DataFrame(schema={"ts": pl.Int64, **dict.fromkeys(ASSET_CTX_NUMBERS, pl.Float64)})
    frame = pl.concat(frames).select(columns)
    try:
        frame = frame.with_columns(pl.col("time").str.to_datetime(time_unit="ms", time_zone="UTC").dt.epoch("ms"))
    except pl.exceptions.PolarsError as exc:
        raise CorruptObject(f"time column is not ISO-8601 ({_first_line(exc)})") from None
    try:
        frame = to_float(frame, ASSET_CTX_NUMBERS, f"row of {coin}")
    except SourceError as exc:
        raise CorruptObject(str(exc)) from None
    return frame.rename({"time": "ts"})


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
