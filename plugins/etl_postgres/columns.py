"""Polars columns as PostgreSQL columns: the type to declare, and the bytes of binary ``COPY``.

Binary COPY skips the server's text parsing (timestamps are the slow part of CSV) and is exact for
floats. The encoder is vectorised with numpy, never row by row in Python: every field is a big-endian length and
a payload. When all rows share one layout (no NULLs, each text column of one length: the usual stream
batch) the rows form a grid and each field is one strided block copy; otherwise each field's bytes are
scattered to their offsets in every row.

Type names are spelled as ``information_schema.columns.data_type`` shows them, so one spelling serves
``CREATE TABLE`` and the comparison with an existing table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from etl.errors import SinkError

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_PG_EPOCH_DAYS = 10_957


@dataclass(frozen=True)
class _Kind:
    postgres: str
    wire: str  # numpy dtype of the big-endian payload, or "text"


_KINDS = {
    "String": _Kind("text", "text"),
    "Categorical": _Kind("text", "text"),
    "Enum": _Kind("text", "text"),
    "Float64": _Kind("double precision", ">f8"),
    "Float32": _Kind("real", ">f4"),
    "Int64": _Kind("bigint", ">i8"),
    "UInt32": _Kind("bigint", ">i8"),
    "Int32": _Kind("integer", ">i4"),
    "UInt16": _Kind("integer", ">i4"),
    "Int16": _Kind("smallint", ">i2"),
    "Int8": _Kind("smallint", ">i2"),
    "UInt8": _Kind("smallint", ">i2"),
    "Boolean": _Kind("boolean", "u1"),
    "Date": _Kind("date", ">i4"),
}


def _kind(dtype: Any, column: str, table: str) -> _Kind:
    import polars as pl

    if isinstance(dtype, pl.Datetime):
        return _Kind("timestamp with time zone" if dtype.time_zone else "timestamp without time zone", ">i8")
    kind = _KINDS.get(type(dtype).__name__)
    if kind is None:
        raise SinkError(f"postgres table {table!r}: column {column!r} has type {dtype}, which this sink cannot "
                        f"store; supported: text, floats, integers, booleans, dates and datetimes")
    return kind


def postgres_type(dtype: Any, column: str, table: str) -> str:
    """The PostgreSQL type that stores ``dtype`` exactly; SinkError for anything else."""
    return _kind(dtype, column, table).postgres


@dataclass(frozen=True)
class _Piece:
    """Consecutive bytes of every row: ``size`` per row (one int when equal in all rows) and the values.

    ``wire`` is the big-endian numpy type the values are written as, or "bytes" when ``values`` already
    holds the rows' bytes back to back. One value stands for every row (field counts, equal lengths).
    """

    size: Any
    values: Any
    wire: str

    def as_bytes(self, rows: int) -> Any:
        import numpy as np

        data = self.values if self.wire == "bytes" else np.ascontiguousarray(self.values.astype(self.wire))
        data = data.view(np.uint8)
        return np.tile(data, rows) if len(self.values) == 1 < rows else data

    def sizes(self, rows: int) -> Any:
        import numpy as np

        return np.full(rows, self.size, np.int64) if isinstance(self.size, int) else self.size


def binary_copy(frame: Any, table: str, chunk_rows: int = 65_536) -> Iterator[Any]:
    """The batch in PostgreSQL's binary COPY format, in buffers to stream: header, rows chunk by chunk, trailer.

    Streaming chunks lets the client encode one while the server digests the previous one.
    """
    yield _HEADER
    for offset in range(0, frame.height, chunk_rows):
        yield memoryview(_tuples(frame.slice(offset, chunk_rows), table))
    yield _TRAILER


def _tuples(frame: Any, table: str) -> Any:
    """One tuple per row (field count, then each field's length and bytes), back to back, as a numpy buffer."""
    import numpy as np

    rows = frame.height
    pieces = [_Piece(2, np.array([frame.width]), ">i2")]
    for series in frame.get_columns():
        pieces.extend(_field(series, table))
    if all(isinstance(piece.size, int) for piece in pieces):
        body = np.empty(rows * sum(piece.size for piece in pieces), np.uint8)
        _fill_grid(body.reshape(rows, -1), pieces)
    else:
        row_sizes = np.sum([piece.sizes(rows) for piece in pieces], axis=0, dtype=np.int64)
        body = np.empty(int(row_sizes.sum()), np.uint8)
        _scatter(body, np.concatenate(([0], np.cumsum(row_sizes)[:-1])), pieces, rows)
    return body


def _fill_grid(grid: Any, pieces: list[_Piece]) -> None:
    """Every row has the same layout: each piece is one strided block copy (byte-swapped on the way)."""
    column = 0
    for piece in pieces:
        block = grid[:, column: column + piece.size]
        if not piece.size:
            continue
        if piece.wire == "bytes":
            block[:] = piece.values.reshape(-1, piece.size)
        else:
            block.view(piece.wire)[:, 0] = piece.values
        column += piece.size


def _scatter(body: Any, row_starts: Any, pieces: list[_Piece], rows: int) -> None:
    """Rows of different layouts: place each piece's bytes at its offset in every row, byte by byte."""
    import numpy as np

    position = row_starts.astype(np.int64)
    for piece in pieces:
        sizes = piece.sizes(rows)
        data = piece.as_bytes(rows)
        if len(data):
            consumed = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            body[np.arange(len(data), dtype=np.int64) + np.repeat(position - consumed, sizes)] = data
        position = position + sizes


def _field(series: Any, table: str) -> list[_Piece]:
    """A column's two pieces: the length of each field (-1 for NULL) and the values of non-null rows."""
    import numpy as np
    import polars as pl

    kind = _kind(series.dtype, series.name, table)
    present = series.drop_nulls()
    if kind.wire == "text":
        text = present.cast(pl.String)
        lengths = series.cast(pl.String).str.len_bytes()
        arrow = text.to_arrow()
        offsets = np.frombuffer(arrow.buffers()[1], np.int64)[arrow.offset: arrow.offset + len(arrow) + 1]
        values = np.frombuffer(arrow.buffers()[2], np.uint8)[offsets[0]: offsets[-1]] if len(arrow) else \
            np.empty(0, np.uint8)
        wire = "bytes"
        uniform = not series.null_count() and lengths.n_unique() <= 1
        width = int(lengths[0]) if len(lengths) else 0
    else:
        if isinstance(series.dtype, pl.Datetime):
            values = present.dt.cast_time_unit("us").to_physical().to_numpy() - _PG_EPOCH_US
        elif series.dtype == pl.Date:
            values = present.to_physical().to_numpy() - _PG_EPOCH_DAYS
        else:
            values = present.to_numpy()
        wire = kind.wire
        width = np.dtype(wire).itemsize
        uniform = not series.null_count()
        lengths = None if uniform else pl.Series(np.where(series.is_null().to_numpy(), -1, width))
    if uniform:
        return [_Piece(4, np.array([width]), ">i4"), _Piece(width, values, wire)]
    sizes = lengths.fill_null(-1).to_numpy().astype(np.int64)
    return [_Piece(4, sizes, ">i4"), _Piece(np.maximum(sizes, 0), values, wire)]
