"""DuckDB sink: upsert batches into a table of a DuckDB file, one transaction per batch.

The table has no PRIMARY KEY: DuckDB's index makes every insert several times slower. Key uniqueness
comes from deleting the batch's keys and inserting the batch in the same transaction; batches arrive
per stream, so the delete is narrowed by the stream's constant key columns and its time range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import etl
from etl.errors import SinkError


class DuckDBSink(etl.Sink):
    name = "duckdb"
    options = {"path": etl.Option(Path, help="DuckDB database file, created if missing")}

    def open(self) -> None:
        import duckdb

        path: Path = self.settings["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = duckdb.connect(str(path))
        self._columns: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        self.connection.close()

    def write(self, frame: Any, dataset: etl.Dataset, table: str) -> None:
        connection = self.connection
        arrow = frame.to_arrow()
        connection.register("etl_batch", arrow)
        try:
            connection.begin()
            try:
                self._prepare_table(table)
                if frame.height:
                    where, params = _key_predicate(frame, dataset)
                    connection.execute(f"DELETE FROM {_quote(table)} WHERE {where}", params)
                    connection.execute(f"INSERT INTO {_quote(table)} BY NAME SELECT * FROM etl_batch")
                connection.commit()
            except Exception:
                connection.rollback()
                self._columns.pop(table, None)
                raise
        finally:
            connection.unregister("etl_batch")

    def _prepare_table(self, table: str) -> None:
        """Create the table on first use; add columns a later batch brings; refuse type changes."""
        described = self.connection.execute("DESCRIBE SELECT * FROM etl_batch").fetchall()
        batch = {row[0]: str(row[1]) for row in described}
        existing = self._columns.get(table) or self._describe(table)
        if existing is None:
            self.connection.execute(f"CREATE TABLE {_quote(table)} AS SELECT * FROM etl_batch LIMIT 0")
            self._columns[table] = batch
            return
        for name, kind in batch.items():
            if name not in existing:
                self.connection.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(name)} {kind}")
                existing[name] = kind
            elif existing[name] != kind and kind != "NULL":
                raise SinkError(
                    f"duckdb table {table!r} column {name!r} is {existing[name]} but the batch has {kind}"
                )
        self._columns[table] = existing

    def _describe(self, table: str) -> dict[str, str] | None:
        found = self.connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()
        if not found or not found[0]:
            return None
        return {row[0]: str(row[1]) for row in self.connection.execute(f"DESCRIBE {_quote(table)}").fetchall()}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _key_predicate(frame: Any, dataset: etl.Dataset) -> tuple[str, list[Any]]:
    """Match the batch's keys, narrowed by constant key columns and the ts range so DuckDB can skip data."""
    clauses, params, varying = [], [], []
    for column in dataset.key:
        values = frame[column]
        if values.n_unique() == 1 and values.null_count() == 0:
            clauses.append(f"{_quote(column)} = ?")
            params.append(values[0])
        else:
            varying.append(column)
    if "ts" in varying:
        clauses.append('"ts" BETWEEN ? AND ?')
        params.extend([frame["ts"].min(), frame["ts"].max()])
    if varying:
        columns = ", ".join(_quote(column) for column in varying)
        clauses.append(f"({columns}) IN (SELECT {columns} FROM etl_batch)")
    return " AND ".join(clauses) or "true", params


@etl.hookimpl
def register_sinks(register):
    register(DuckDBSink)
