"""What a sink holds, per stream, as ``Sink.stored`` reports it for ``etl status --stored``.

A sink that can be read back answers with one ``StoredStream`` per stream in a table: its stream key values
(``source``, ``symbol``, ``timeframe``), rows, first and last ``ts``, and bytes where the store can tell them
apart per stream. ``summary_sql`` is the query the SQL sinks share, and ``prune_sql`` their delete for
``etl prune``; ``Selection`` is what ``etl.read`` asks ``Sink.read`` for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schemas import Dataset


@dataclass(frozen=True)
class StoredStream:
    key: tuple[str, ...]  # the dataset's stream key values, in its order: ("binance", "BTCUSDT", "1m")
    rows: int
    first_ms: int
    last_ms: int
    bytes: int | None = None


@dataclass(frozen=True)
class Selection:
    """The rows ``etl.read`` asks a sink for: one pipeline's source (its ``source`` column), the symbols (all
    when None), and ``ts`` in ``[start, end)`` (open where None)."""

    source: str
    symbols: tuple[str, ...] | None = None
    start: int | None = None
    end: int | None = None

    def sql_where(self, quote: Callable[[str], str], mark: str = "?",
                  time: Callable[[int], Any] | None = None) -> tuple[str, list[Any]]:
        """A WHERE condition and its parameters; ``time`` turns epoch ms into what the store compares ``ts``
        with (a datetime by default)."""
        from .timeframes import from_ms

        as_time = time or from_ms
        conditions, parameters = [f"{quote('source')} = {mark}"], [self.source]
        if self.symbols is not None:
            conditions.append(f"{quote('symbol')} IN ({', '.join(mark for _ in self.symbols) or 'NULL'})")
            parameters += list(self.symbols)
        for bound, operator in ((self.start, ">="), (self.end, "<")):
            if bound is not None:
                conditions.append(f"{quote('ts')} {operator} {mark}")
                parameters.append(as_time(bound))
        return " AND ".join(conditions), parameters


def summary_sql(dataset: Dataset, table: str, quote: Callable[[str], str]) -> str:
    """Rows and the first and last ``ts`` of each stream of ``table`` (quoted, and qualified where the store
    needs it), grouped on the dataset's stream key; ``quote`` quotes a column name."""
    columns = ", ".join(quote(column) for column in dataset.stream_key)
    return (f"SELECT {columns}, count(*), min({quote('ts')}), max({quote('ts')}) FROM {table} "
            f"GROUP BY {columns} ORDER BY {columns}")


def prune_sql(table: str, match: dict[str, str], before: bool, quote: Callable[[str], str], mark: str = "?") -> str:
    """The DELETE of ``Sink.prune`` in the SQL sinks: the ``match`` columns equal, ``ts`` below a parameter when
    ``before``; parameters are the ``match`` values in order, then the time."""
    conditions = [f"{quote(column)} = {mark}" for column in match] + ([f"{quote('ts')} < {mark}"] if before else [])
    return f"DELETE FROM {table} WHERE {' AND '.join(conditions)}"


def summaries(rows: Iterable[tuple[Any, ...]], width: int) -> list[StoredStream]:
    """``StoredStream`` of each row of ``summary_sql`` (``width`` stream key columns, then the three counts);
    timestamps may come back as datetimes or as the SQLite sink's ISO text."""
    return [StoredStream(tuple(row[:width]), row[width], _ms(row[width + 1]), _ms(row[width + 2])) for row in rows]


def _ms(value: Any) -> int:
    from .timeframes import parse_time

    return int(value.timestamp() * 1000) if isinstance(value, datetime) else parse_time(value)
