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

READ_BYTES = 2 << 20  # compressed bytes read at a time (~10 MB once decompressed)
# The required columns of the asset_ctxs dataset first, then its extras (which can be empty).
ASSET_CTX_NUMBERS = (
    "funding", "open_interest", "mark_px", "oracle_px", "mid_px", "premium", "impact_bid_px", "impact_ask_px",
    "prev_day_px", "day_ntl_vlm",
)
_TOP_FIELDS = ("bid_px", "bid_sz", "ask_px", "ask_sz")
# The archive writes {"raw":{"channel":"l2Book","data":{"coin":..,"time":..,"levels":[[{"px":..,"sz":..,"n":..}
# ..],[..]]}}}: the fast path finds those markers in that order and reads short slices after them; any other
# layout goes to the slow path.
_DATA, _TIME, _LEVELS = '"channel":"l2Book","data":{', ',"time":', ',"levels":[['
_FIRST_LEVEL = r'^\{"px":"(?P<px>[^"]*)","sz":"(?P<sz>[^"]*)"'
_SLICE = 64


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


def line_chunks(path: Path, read_bytes: int = READ_BYTES) -> Iterator[bytes]:
    """Decompress an LZ4 frame file as a stream (``read_bytes`` of input at a time), yielding runs of whole lines.

    A truncated file (the last frame never ends) or a damaged one is a CorruptObject.
    """
    tail = b""
    for block in _decompressed(path, read_bytes):
        if tail:
            block = tail + block
        cut = block.rfind(b"\n") + 1
        tail = block[cut:]
        if cut:
            yield block if cut == len(block) else block[:cut]
    if tail.strip():
        yield tail


def _decompressed(path: Path, read_bytes: int) -> Iterator[bytes]:
    import lz4.frame

    decompressor = lz4.frame.LZ4FrameDecompressor()
    inside_frame = False
    with path.open("rb") as handle:
        if not handle.read(1):
            raise CorruptObject("empty object")
        handle.seek(0)
        while data := handle.read(read_bytes):
            while data:
                try:
                    block = decompressor.decompress(data)
                except RuntimeError as exc:
                    raise CorruptObject(f"not a valid LZ4 frame ({exc})") from None
                inside_frame = True
                if block:
                    yield block
                data = b""
                if decompressor.eof:  # another frame may follow
                    data = decompressor.unused_data or b""
                    decompressor = lz4.frame.LZ4FrameDecompressor()
                    inside_frame = False
    if inside_frame:
        raise CorruptObject("not a complete LZ4 frame (the file ends inside a frame: truncated)")


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

    line, at = pl.col("line"), pl.col
    bid, ask = at("bid"), at("ask")
    fast = (
        lines.lazy()
        .with_columns(
            data=line.str.find(_DATA, literal=True),
            time=line.str.find(_TIME, literal=True) + len(_TIME),
            levels=line.str.find(_LEVELS, literal=True) + len(_LEVELS),
            asks=line.str.find("],[", literal=True) + 3,
        )
        .with_columns(bid_text=line.str.slice(at("levels"), _SLICE), ask_text=line.str.slice(at("asks"), _SLICE))
        .with_columns(bid=at("bid_text").str.extract_groups(_FIRST_LEVEL),
                      ask=at("ask_text").str.extract_groups(_FIRST_LEVEL))
        .select(
            ts=line.str.slice(at("time"), at("levels") - len(_LEVELS) - at("time")).cast(pl.Int64, strict=False),
            bid_px=bid.struct.field("px"),
            bid_sz=bid.struct.field("sz"),
            ask_px=ask.struct.field("px"),
            ask_sz=ask.struct.field("sz"),
            recognised=(
                (at("data") < at("time")) & (at("time") < at("levels")) & (at("levels") < at("asks"))
                & (at("bid_text").str.starts_with("]") | bid.struct.field("sz").is_not_null())
                & (at("ask_text").str.starts_with("]") | ask.struct.field("sz").is_not_null())
            ),
        )
        .with_columns(recognised=(at("recognised") & at("ts").is_not_null()).fill_null(False))
        .collect()
    )
    recognised = fast["recognised"]
    good = fast.with_row_index("number", first_line).filter(recognised).select("number", "ts", *_TOP_FIELDS)
    odd = lines.with_row_index("number", first_line).filter(~recognised & (line.str.len_bytes() > 0))
    if odd.height:
        slow = [_top_of_book_slowly(text, number) for number, text in odd.iter_rows()]
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
        frame = to_float(frame, ASSET_CTX_NUMBERS, coin)
    except SourceError as exc:
        raise CorruptObject(str(exc)) from None
    try:
        ts = pl.col("time").str.to_datetime(time_unit="ms", time_zone="UTC").dt.epoch("ms")
        return frame.with_columns(ts.alias("time")).rename({"time": "ts"})
    except pl.exceptions.PolarsError as exc:
        raise CorruptObject(f"{coin}: time is not ISO-8601 ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
