"""DuckDB sink: upsert batches into a table of a DuckDB file, straight from Arrow, one transaction per batch.

Options::

    [[pipelines.NAME.sinks]]
    plugin = "duckdb"
    path = "data/market.duckdb"   # created if missing; relative to the pipeline file
    # memory_limit = "128MB"     # DuckDB's buffer pool for this connection (DuckDB's own default: 80% of RAM)
    # table = "ohlcv"             # default: the dataset name

Storage: one table per dataset (or ``table``) in the ``main`` schema, created on first write with the
batch's columns and types in order (``ts`` is ``TIMESTAMP WITH TIME ZONE``, floats ``DOUBLE``, strings
``VARCHAR``), key columns ``NOT NULL``. A column a later batch brings is added with ``ALTER TABLE``; a
column whose type differs from the table's is a SinkError naming table, column and both types.

The table has no PRIMARY KEY: DuckDB's index makes every insert several times slower (measured: a keyed
``INSERT OR REPLACE`` runs at half the speed of a plain insert, ``MERGE INTO`` at a twentieth). Key
uniqueness comes from deleting the batch's keys and inserting the batch in one transaction, which costs
about as much as the plain insert. The delete is narrowed to each stream's own key range, so DuckDB
skips the rest of the table by its zone maps; a batch with no stored row in those ranges (new data: the
usual case) skips the delete. A batch replaces whole rows: a table column the batch
lacks becomes NULL for the rows it rewrites, the same in every sink of this project. Keys are unique
within a batch (the runner guarantees it).

DuckDB lets one process at a time open a database file for writing. The runner opens the sink at its
first write and closes it after the pipeline's run; while another process (a second ``etl run``, a
notebook) holds the file, opening raises SinkBusyError naming the file and the holder's PID, and the
runner waits for it (the pipeline's ``sink_wait``), asking for it beside the file (``request_file``): an
``etl stream`` that holds it hands it over after its commit (``etl.handoff``). Within one process DuckDB shares
a file between connections
of one configuration only: ``read`` (the ``enrich`` transform reading what its own pipeline stored) opens it
read-only, or, while this process writes it, with the writer's configuration; and a writer that finds it open
read-only for a moment waits like it does for another process.

A fatal DuckDB error (out of memory or a full disk during a checkpoint) invalidates the database: every
later statement fails with "database has been invalidated". The sink then reopens the file once and
writes the batch again (the upsert is idempotent); if that fails too, this batch and every later one of
the run fail with one message naming the file and the cause, without touching the file again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import etl
from etl.errors import SinkBusyError, SinkError
from etl.log import get_logger

# DuckDB's message when another process has the file open for writing: "Could not set lock on file ...:
# Conflicting lock is held in /usr/bin/python3 (PID 4242) by user etl".
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in .* \(PID (\d+)\)")
log = get_logger("etl.duckdb")
VIEWS = ("etl_columns", "etl_keys", "etl_batch")
APPEND_VACUUM_TASKS = 0
REWRITE_VACUUM_TASKS = 100  # DuckDB's default
MAX_BOXES = 64


class DuckDBSink(etl.Sink):
    name = "duckdb"
    _reader: Any = None  # the connection of an enclosing ``reading``
    options = {
        "path": etl.Option(Path, help="DuckDB database file, created if missing"),
        "memory_limit": etl.Option(str, "128MB", help="DuckDB's buffer pool for this connection (its default is "
                                   "80% of RAM, far more than upserts need)"),
    }

    def open(self) -> None:
        import duckdb

        path: Path = self.settings["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = duckdb.connect(str(path), config=self._config())
        except duckdb.Error as exc:
            raise _cannot_open(path, exc, "open") from exc
        self._columns: dict[str, dict[str, str]] = {}
        self._invalidated: str | None = None

    def _config(self) -> dict[str, Any]:
        return {"memory_limit": self.settings["memory_limit"], "preserve_insertion_order": False,
                "max_vacuum_tasks": APPEND_VACUUM_TASKS}

    def close(self) -> None:
        self.connection.close()

    def request_file(self) -> Path:
        """Beside the database file: a process waiting for it asks an ``etl stream`` holding it to let go."""
        path: Path = self.settings["path"]
        return path.with_name(path.name + ".wanted")

    def stored(self, dataset: etl.Dataset, table: str) -> list[etl.StoredStream]:
        """Per stream of ``table``, through a read-only connection (which a writing process blocks)."""
        from etl.stored import summaries, summary_sql

        with self._reading(table) as connection:
            rows = connection.execute(summary_sql(dataset, _quote(table), _quote)).fetchall() if connection else []
        return summaries(rows, len(dataset.stream_key))

    def read(self, dataset: etl.Dataset, table: str, selection: etl.Selection) -> Any:
        """The selected rows, read whole through a read-only connection, timestamps in UTC."""
        import polars as pl

        with self._reading(table) as connection:
            if connection is None:
                return pl.LazyFrame()
            where, parameters = selection.sql_where(_quote)
            connection.execute("SET TimeZone = 'UTC'")
            query = f"SELECT * FROM {_quote(table)} WHERE {where} ORDER BY ts"
            return connection.sql(query, params=parameters).pl().lazy()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One connection for the reads inside (``enrich`` reads three tables per window of bars)."""
        with self._connected() as connection:
            self._reader = connection
            try:
                yield
            finally:
                self._reader = None

    @contextmanager
    def _reading(self, table: str) -> Iterator[Any]:
        """A read-only connection to the file, or None when the file or the table does not exist."""
        with self._connected() as connection:
            found = connection and connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
                [table]).fetchone()
            yield connection if found and found[0] else None

    @contextmanager
    def _connected(self) -> Iterator[Any]:
        """The connection of an enclosing ``reading``, else a new read-only one; None when there is no file."""
        import duckdb

        path: Path = self.settings["path"]
        if self._reader is not None or not path.exists():
            yield self._reader
            return
        try:
            connection = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            connection = self._beside_writer(path, exc)
        with connection:
            yield connection

    def _beside_writer(self, path: Path, refused: Exception) -> Any:
        """A connection to the file this process already writes (the ``enrich`` transform reads what its own
        pipeline's sink stored): DuckDB refuses a read-only one there, but shares the writer's database with a
        connection of the same configuration, which reads the committed rows."""
        import duckdb

        if "different configuration" not in str(refused):
            raise _cannot_open(path, refused, "read") from refused
        try:
            return duckdb.connect(str(path), config=self._config())
        except duckdb.Error as exc:
            raise _cannot_open(path, exc, "read") from exc

    def prune(self, dataset: etl.Dataset, table: str, match: dict[str, str], before: int | None) -> int:
        """One DELETE in one transaction; a missing file or table holds nothing to delete."""
        from etl.stored import prune_sql
        from etl.timeframes import from_ms

        if not self.settings["path"].exists():
            return 0
        self.open()
        try:
            if self._describe(table) is None:
                return 0
            self.connection.begin()
            deleted = self.connection.execute(prune_sql(_quote(table), match, before is not None, _quote),
                                              [*match.values(), *([from_ms(before)] if before is not None else [])])
            count = deleted.fetchone()
            self._commit(vacuum=True)
        finally:
            self.close()
        return count[0] if count else 0

    def write(self, frame: Any, dataset: etl.Dataset, table: str) -> None:
        """Upsert the batch; after a fatal error (the database is invalidated) reopen the file and write it
        once more, which the delete-then-insert makes safe even if the failed commit had landed."""
        import duckdb

        if self._invalidated:
            raise SinkError(self._invalidated)
        path = self.settings["path"]
        try:
            try:
                self._upsert(frame, dataset, table)
            except duckdb.FatalException as exc:
                log.warning("duckdb database invalidated; reopening it and writing the batch again", path=str(path),
                            table=table, error=_one_line(exc))
                self._reopen(exc)
                self._upsert(frame, dataset, table)
        except duckdb.FatalException as exc:
            self._invalidated = (f"duckdb {path}: a fatal error invalidated the database again after it was "
                                 f"reopened ({_one_line(exc)}); nothing more is written to it in this run")
            raise SinkError(self._invalidated) from exc
        except duckdb.Error as exc:
            raise SinkError(f"duckdb {path} table {table!r}: {_one_line(exc)}") from exc

    def _upsert(self, frame: Any, dataset: etl.Dataset, table: str) -> None:
        """Delete the batch's stored keys and insert the batch, in one transaction."""
        import duckdb

        connection = self.connection
        connection.begin()
        try:
            self._prepare_table(table, dataset, frame)
            near = self._stored_near(table, frame, dataset)
            deleted = self._delete(table, *near, frame.select(dataset.key)) if near else 0
            with _scan(connection, "etl_batch", frame):
                connection.execute(f"INSERT INTO {_quote(table)} BY NAME SELECT * FROM etl_batch")
            self._commit(vacuum=deleted > 0)
        except Exception as exc:
            self._columns.pop(table, None)
            if not isinstance(exc, duckdb.FatalException):  # an invalidated database refuses even a rollback
                self._roll_back()
            raise

    def _roll_back(self) -> None:
        """End the failed transaction and drop its views. A commit that failed writing (a full disk) has
        already ended it, and DuckDB's "no transaction is active" must not hide the error that did."""
        import duckdb

        with suppress(duckdb.TransactionException):
            self.connection.rollback()
        for view in VIEWS:
            self.connection.unregister(view)

    def _reopen(self, cause: Exception) -> None:
        """A fresh connection after a fatal error: DuckDB drops the invalidated database once its last
        connection closes, and the next open replays the file's write-ahead log."""
        import duckdb

        with suppress(duckdb.Error):
            self.connection.close()
        try:
            self.open()
        except SinkError as exc:
            self._invalidated = (f"duckdb {self.settings['path']}: a fatal error invalidated the database "
                                 f"({_one_line(cause)}) and reopening it failed ({exc}); nothing more is written "
                                 f"to it in this run")
            raise SinkError(self._invalidated) from exc

    def _stored_near(self, table: str, frame: Any, dataset: etl.Dataset) -> tuple[str, list[Any]] | None:
        """Where stored rows that may share a key with the batch are (a SQL condition and its parameters),
        or None when no stored row is near: new data, the usual case, then skips the delete.

        Near means inside a box: a key value, or the range of a key column, for each key column. The whole
        batch is tried as one box first (its minimums and maximums are cheap), then one box per stream in
        it. The per-stream boxes matter because the streams of a backfill cover the same months: the batch's
        box then holds rows other symbols stored before. DuckDB plans a condition of many boxes slowly (0.1
        ms each), so a batch of more than ``MAX_BOXES`` streams stays one box.
        """
        import polars as pl

        bounds = [bound for column in dataset.key for bound in (pl.col(column).min().alias(f"min {column}"),
                                                                pl.col(column).max().alias(f"max {column}"))]
        near = _inside(frame.select(bounds), dataset.key)
        if not self._any(table, near):
            return None
        if dataset.stream_key:
            boxes = frame.group_by(dataset.stream_key).agg(bounds)
            if 1 < boxes.height <= MAX_BOXES:  # one stream: its box is the batch's, already asked
                near = _inside(boxes, dataset.key)
                if not self._any(table, near):
                    return None
        return near

    def _any(self, table: str, near: tuple[str, list[Any]]) -> bool:
        condition, params = near
        return bool(self.connection.execute(f"SELECT 1 FROM {_quote(table)} WHERE {condition} LIMIT 1",
                                            params).fetchall())

    def _delete(self, table: str, near: str, params: list[Any], keys: Any) -> int:
        """Delete the stored rows whose keys the batch brings (``keys``: the batch's key columns); how many."""
        columns = ", ".join(_quote(column) for column in keys.columns)
        with _scan(self.connection, "etl_keys", keys):
            deleted = self.connection.execute(
                f"DELETE FROM {_quote(table)} WHERE ({near}) AND ({columns}) IN (SELECT {columns} FROM etl_keys)",
                params,
            ).fetchone()
        return deleted[0] if deleted else 0

    def _commit(self, vacuum: bool) -> None:
        """Commit; let the checkpoint DuckDB may run at this commit vacuum only when stored rows were replaced.

        DuckDB's vacuum merges row groups left partly filled by earlier commits, which rewrites most of the
        table behind them: with it, 5M rows in commits of 500k wrote 1.0-2.1 GB and ran at 0.6-1.0M rows/s;
        without it, 0.77 GB at 1.4-1.6M rows/s, the speed of one plain insert. Appends leave nothing to
        reclaim, so only a commit that deleted rows pays for it.
        """
        if vacuum:
            self.connection.execute(f"SET max_vacuum_tasks = {REWRITE_VACUUM_TASKS}")
        try:
            self.connection.commit()
        finally:
            if vacuum:
                self.connection.execute(f"SET max_vacuum_tasks = {APPEND_VACUUM_TASKS}")

    def _prepare_table(self, table: str, dataset: etl.Dataset, frame: Any) -> None:
        """Create the table on first use; add columns a later batch brings; refuse type changes."""
        with _scan(self.connection, "etl_columns", frame.head(0)):
            described = self.connection.execute("DESCRIBE SELECT * FROM etl_columns").fetchall()
        batch = {row[0]: str(row[1]) for row in described}
        existing = self._columns.get(table) or self._describe(table)
        if existing is None:
            # Declared column by column: DuckDB 2.0 loses sight of rows later inserted into a table made by
            # CREATE TABLE AS from an Arrow batch with constant string columns (scans in this connection
            # return nothing, so the upsert's delete would miss the keys it must replace).
            columns = ", ".join(f"{_quote(name)} {kind}{' NOT NULL' if name in dataset.key else ''}"
                                for name, kind in batch.items())
            self.connection.execute(f"CREATE TABLE {_quote(table)} ({columns})")
            self._columns[table] = batch
            return
        for name, kind in batch.items():
            if name not in existing:
                self.connection.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(name)} {kind}")
                existing[name] = kind
            elif existing[name] != kind:
                raise SinkError(
                    f"duckdb table {table!r} column {name!r} is {existing[name]} but the batch has {kind}"
                )
        self._columns[table] = existing

    def _describe(self, table: str) -> dict[str, str] | None:
        found = self.connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
            [table],
        ).fetchone()
        if not found or not found[0]:
            return None
        return {row[0]: str(row[1]) for row in self.connection.execute(f"DESCRIBE {_quote(table)}").fetchall()}


@contextmanager
def _scan(connection: Any, name: str, frame: Any) -> Iterator[None]:
    """``frame`` readable as the view ``name`` for the statements inside the block.

    A failed statement leaves the view registered: DuckDB refuses to unregister in an aborted transaction,
    so ``write`` drops the views after its rollback.
    """
    connection.register(name, _ArrowStream(frame))
    yield
    connection.unregister(name)


class _ArrowStream:
    """A frame as an Arrow C stream (a fresh one each time DuckDB scans it), without pyarrow.

    ``DataFrame.to_arrow`` would load pyarrow (about 40 MB of a cron run's memory) only to hand DuckDB the
    same buffers. Polars copies a frame's chunks into one on every export, and DuckDB exports a view three
    times (to register, to bind and to scan it), so the frame is joined once here: a group of 14 batches
    then inserts in 2.7 CPU-seconds per 5M rows instead of 3.9-5.8. Each statement registers only the
    columns or rows it reads (the schema from ``head(0)``, the delete from the key columns).
    """

    def __init__(self, frame: Any):
        self.frame = frame.rechunk()

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)


def _cannot_open(path: Path, exc: Exception, verb: str) -> SinkError:
    """SinkBusyError naming the holder's PID when another process writes the file, or when this process reads it
    (``enrich`` reading the pipeline's own sink) with another configuration for a moment; else SinkError."""
    holder = _LOCK_HOLDER.search(str(exc))
    if holder:
        return SinkBusyError(f"duckdb: {path} is held by another process (PID {holder.group(1)})")
    if "different configuration" in str(exc):
        return SinkBusyError(f"duckdb: {path} is being read in this process")
    return SinkError(f"duckdb: cannot {verb} {path}: {_one_line(exc)}")


def _one_line(exc: Exception) -> str:
    """DuckDB's message on one line: an invalidated database's error quotes the original one on the next."""
    return " ".join(str(exc).split())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _inside(boxes: Any, key: tuple[str, ...]) -> tuple[str, list[Any]]:
    """A SQL condition, and its parameters, that holds for rows inside any of the boxes (rows of min and max
    per key column): so DuckDB skips the rest of the table by its zone maps."""
    clauses, params = [], []
    for box in boxes.iter_rows(named=True):
        parts = []
        for column in key:
            low, high = box[f"min {column}"], box[f"max {column}"]
            parts.append(f"{_quote(column)} = ?" if low == high else f"{_quote(column)} BETWEEN ? AND ?")
            params.extend([low] if low == high else [low, high])
        clauses.append(f"({' AND '.join(parts)})")
    return " OR ".join(clauses), params


@etl.hookimpl
def register_sinks(register):
    register(DuckDBSink)
