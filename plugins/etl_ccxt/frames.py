"""Exchange rows (lists or objects, numbers as text or not) into typed polars frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class Field:
    """Output column ``name`` read from ``key`` (a list index or an object key) of every row.

    ``kind``: ``"ms"`` or ``"i64"`` (integers, also from text), ``"f64"`` (numbers, also from text; an
    empty string becomes null). An ``optional`` field missing from every row of a page is left out.
    """

    name: str
    key: int | str
    kind: str = "f64"
    optional: bool = False


def rows_to_frame(rows: Sequence[Any], fields: Sequence[Field]) -> pl.DataFrame:
    import polars as pl

    columns: list[pl.Series] = []
    for field in fields:
        if field.optional:
            values = [row.get(field.key) for row in rows]
            if all(value is None for value in values):
                continue
        else:
            values = [row[field.key] for row in rows]
        if field.kind == "f64":
            columns.append(pl.Series(field.name, values, strict=False).cast(pl.Float64, strict=False))
        else:
            columns.append(pl.Series(field.name, [None if v is None else int(v) for v in values], dtype=pl.Int64))
    return pl.DataFrame(columns)
