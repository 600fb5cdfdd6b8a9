"""SQLite sink (sqlite-utils): upsert batches into a table of one SQLite file, one transaction per batch.

Options::

    [[pipelines.NAME.sinks]]
    plugin = "sqlite"
    path = "data/market.sqlite"   # created if missing; relative to the pipeline file
    # table = "ohlcv"             # default: the dataset name

Storage: the database runs in WAL mode (readers never block the writer) with ``synchronous = FULL``, so a
committed batch survives a power cut and never trails the checkpoint. One table per dataset (or
``table``), created on first write with the batch's columns in order, ``PRIMARY KEY`` on the dataset key
(key columns ``NOT NULL``). Column types:

- timestamps: ``TEXT``, ISO-8601 in UTC with milliseconds and a ``Z``: ``2024-01-01T00:00:00.000Z``.
  The fixed width makes text order equal time order, so ``WHERE ts >= '2024-03-01'`` and ``ORDER BY ts``
  work; ``strftime``/``julianday`` read the format. Timezone-naive datetimes are taken as UTC.
- dates ``TEXT`` ``2024-01-01``; floats ``REAL``; integers and booleans ``INTEGER``; strings ``TEXT``.
  SQLite stores a float NaN as NULL (the datasets never hold NaN: missing values are null).

A column a later batch brings is added with ``ALTER TABLE``; a column whose declared type differs from
the batch's is a SinkError naming table, column and both types. Table and column changes commit before
the batch; the batch's rows are one ``INSERT ... ON CONFLICT (key) DO UPDATE`` transaction that leaves
rows whose values did not change untouched. A batch replaces whole rows: a table column the batch lacks
becomes NULL for the rows it rewrites, the same in every sink of this project.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import etl
from etl.errors import SinkError

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"


class SQLiteSink(etl.Sink):
    name = "sqlite"
    options = {"path": etl.Option(Path, help="SQLite database file, created if missing")}

    def open(self) -> None:
        import sqlite3

        import sqlite_utils

        path: Path = self.settings["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        # Opened by the runner's thread, written from stream threads; the runner serialises the writes.
        # Another process writing the same file makes a batch wait for its turn, up to a minute.
        self.db = sqlite_utils.Database(sqlite3.connect(path, check_same_thread=False, timeout=60))
        self.db.enable_wal()
        self.db.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        self.db.close()

    def stored(self, dataset: etl.Dataset, table: str) -> list[etl.StoredStream]:
        """Per stream of ``table``, read through a read-only connection."""
        from etl.stored import summaries, summary_sql

        with self._reading(table) as connection:
            rows = connection.execute(summary_sql(dataset, _quote(table), _quote)).fetchall() if connection else []
        return summaries(rows, len(dataset.stream_key))

    def read(self, dataset: etl.Dataset, table: str, selection: etl.Selection) -> Any:
        """The selected rows with columns typed by their declared type; timestamps stay ISO text."""
        import polars as pl

        kinds = {"TEXT": pl.String, "REAL": pl.Float64, "INTEGER": pl.Int64}
        with self._reading(table) as connection:
            if connection is None:
                return pl.LazyFrame()
            declared = connection.execute("SELECT name, type FROM pragma_table_info(?)", [table]).fetchall()
            where, parameters = selection.sql_where(_quote, time=_timestamp_text)
            rows = connection.execute(f"SELECT * FROM {_quote(table)} WHERE {where} ORDER BY ts", parameters).fetchall()
        return pl.DataFrame(rows, schema={name: kinds.get(kind, pl.String) for name, kind in declared},
                            orient="row").lazy()

    def prune(self, dataset: etl.Dataset, table: str, match: dict[str, str], before: int | None) -> int:
        """One DELETE in one transaction; ``before`` compared as the stored ISO text, whose order is time order."""
        from etl.stored import prune_sql

        if not self.settings["path"].exists():
            return 0
        self.open()
        try:
            if not self.db[table].exists():
                return 0
            at = [_timestamp_text(before)] if before is not None else []
            with self.db.conn:
                return self.db.conn.execute(prune_sql(_quote(table), match, before is not None, _quote),
                                            [*match.values(), *at]).rowcount
        finally:
            self.close()

    @contextmanager
    def _reading(self, table: str) -> Iterator[Any]:
        """A read-only connection, or None when the file or the table does not exist."""
        import sqlite3

        path: Path = self.settings["path"]
        if not path.exists():
            yield None
            return
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=60)) as connection:
            found = connection.execute("SELECT count(*) FROM pragma_table_info(?)", [table]).fetchone()[0]
            yield connection if found else None

    def write(self, frame: Any, dataset: etl.Dataset, table: str) -> None:
        import sqlite3

        types = {name: _sqlite_type(dtype, name, table) for name, dtype in frame.schema.items()}
        try:
            columns = self._prepare_table(types, dataset, table)
            with self.db.conn:
                self.db.conn.executemany(_upsert_sql(table, list(types), columns, dataset.key),
                                         _storable(frame).iter_rows())
        except (sqlite3.Error, OverflowError) as exc:
            raise SinkError(f"sqlite {self.settings['path']} table {table!r}: {exc}") from exc

    def _prepare_table(self, types: dict[str, str], dataset: etl.Dataset, table: str) -> list[str]:
        """Create the table on first use, add new columns, refuse type changes; return the table's columns."""
        target = self.db.table(table)
        if not target.exists():
            target.create(types, pk=dataset.key, not_null=dataset.key)
            return list(types)
        existing = {column.name: column.type.upper() for column in target.columns}
        for column, kind in types.items():
            if column not in existing:
                target.add_column(column, kind)
                existing[column] = kind
            elif existing[column] != kind:
                raise SinkError(f"sqlite table {table!r} column {column!r} is {existing[column]} but the batch "
                                f"has {kind}")
        return list(existing)


def _quote(name: str) -> str:
    from sqlite_utils.db import quote_identifier

    return quote_identifier(name)


def _timestamp_text(ts_ms: int) -> str:
    """Epoch milliseconds as the sink stores timestamps (``TIMESTAMP_FORMAT``)."""
    from etl.timeframes import from_ms

    return f"{from_ms(ts_ms):%Y-%m-%dT%H:%M:%S}.{ts_ms % 1000:03d}Z"


def _sqlite_type(dtype: Any, column: str, table: str) -> str:
    import polars as pl

    if dtype.is_float():
        return "REAL"
    if dtype.is_integer() or isinstance(dtype, pl.Boolean):
        return "INTEGER"
    if isinstance(dtype, pl.Datetime | pl.Date | pl.String | pl.Categorical | pl.Enum):
        return "TEXT"
    raise SinkError(f"sqlite table {table!r}: column {column!r} has type {dtype}, which this sink cannot store; "
                    f"supported: text, floats, integers, booleans, dates and datetimes")


def _storable(frame: Any) -> Any:
    """Datetimes as fixed-width ISO-8601 UTC text, dates as ISO dates, categoricals as strings."""
    import polars as pl

    changes = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            utc = pl.col(name).dt.convert_time_zone("UTC") if dtype.time_zone else pl.col(name)
            changes.append(utc.dt.strftime(TIMESTAMP_FORMAT))
        elif dtype == pl.Date:
            changes.append(pl.col(name).dt.strftime("%Y-%m-%d"))
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            changes.append(pl.col(name).cast(pl.String))
    return frame.with_columns(changes)


def _upsert_sql(table: str, batch_columns: list[str], columns: list[str], key: tuple[str, ...]) -> str:
    values = [column for column in columns if column not in key]
    insert = (f"INSERT INTO {_quote(table)} AS t ({', '.join(map(_quote, batch_columns))}) "
              f"VALUES ({', '.join('?' for _ in batch_columns)}) ON CONFLICT ({', '.join(map(_quote, key))}) ")
    if not values:
        return insert + "DO NOTHING"
    assignments = ", ".join(f"{_quote(column)} = excluded.{_quote(column)}" for column in values)
    stored = ", ".join(f"t.{_quote(column)}" for column in values)
    incoming = ", ".join(f"excluded.{_quote(column)}" for column in values)
    return insert + f"DO UPDATE SET {assignments} WHERE ({stored}) IS NOT ({incoming})"


@etl.hookimpl
def register_sinks(register):
    register(SQLiteSink)
