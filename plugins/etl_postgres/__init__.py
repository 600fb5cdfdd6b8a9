"""PostgreSQL (and TimescaleDB) sink: upsert batches with COPY, one transaction per batch.

Options::

    [[pipelines.NAME.sinks]]
    plugin = "postgres"
    dsn = "postgresql://etl:${PGPASSWORD}@db.example:5432/market"   # libpq URL or key=value string
    schema = "public"        # created if missing
    # table = "ohlcv"        # default: the dataset name
    # hypertable = false     # true: tables this sink creates become TimescaleDB hypertables on ts
    # retries = 5            # attempts per batch when the connection drops

Write the password as ``${ENV}`` so it never lives in the file. The DSN and password are never logged or
shown: messages name only host, port, database and user.

Storage: one table per dataset (or ``table``), created on first write with the batch's columns in order,
``PRIMARY KEY`` on the dataset key, ``ts`` as ``TIMESTAMPTZ``, floats ``DOUBLE PRECISION``, strings
``TEXT`` (mapping in ``etl_postgres.columns``). A column a later batch brings is added with ``ALTER TABLE``;
a column whose type differs from the table's is a SinkError naming table, column and both types.

Each batch is one transaction. Its rows are encoded once in binary COPY format (``etl_postgres.columns``:
no text parsing on the server, floats exact). The sink first COPYs them straight into the table inside a
savepoint: new keys, the usual case, cost no more than a plain COPY. If the primary key refuses a row,
the savepoint is rolled back and the batch is upserted instead: COPY into a temporary table, then
``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`` touching only rows whose values changed, so an
identical rewrite writes nothing. A batch replaces whole rows: a table column the batch lacks becomes NULL
for the rows it rewrites, the same in every sink of this project. Keys are unique within a batch (the
runner guarantees it). When the connection drops mid-batch the server rolls the transaction back; the
sink reconnects and replays the batch (tenacity, exponential backoff), so a table never holds half a batch.
"""

from __future__ import annotations

from typing import Any

import etl
from etl.errors import ConfigError, SinkError
from etl.log import get_logger

from .columns import binary_copy, postgres_type

log = get_logger("etl.postgres")
TIMESCALE = "timescaledb"


class PostgresSink(etl.Sink):
    name = "postgres"
    options = {
        "dsn": etl.Option(str, help="libpq URL or key=value string; put the password in ${ENV}", secret=True),
        "schema": etl.Option(str, "public", help="schema of the tables, created if missing"),
        "hypertable": etl.Option(bool, False, help="make new tables TimescaleDB hypertables on ts"),
        "retries": etl.Option(int, 5, help="attempts per batch when the connection drops"),
    }

    def __init__(self, settings: dict[str, Any], context: etl.PluginContext):
        super().__init__(settings, context)
        self.connection: Any = None
        self._columns: dict[str, dict[str, str]] = {}

    def check(self) -> None:
        try:
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise ConfigError("the postgres sink needs psycopg: pip install 'market-etl[postgres]'") from None
        try:
            self._conninfo = conninfo_to_dict(self.settings["dsn"])
        except Exception:
            raise ConfigError("'dsn' is not a valid libpq connection string or postgresql:// URL") from None
        if self.settings["retries"] < 1:
            raise ConfigError(f"'retries' must be at least 1, not {self.settings['retries']}")

    @property
    def target(self) -> str:
        """Where the sink writes, for messages: never the DSN itself, which may hold the password."""
        info = self._conninfo
        host = info.get("host") or "localhost"
        port = info.get("port") or "5432"
        return f"{info.get('user') or 'default user'}@{host}:{port}/{info.get('dbname') or 'default database'}"

    def open(self) -> None:
        self.check()
        self._retrying(self._connect)
        if self.settings["hypertable"]:
            self._require_timescale()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def stored(self, dataset: etl.Dataset, table: str) -> list[etl.StoredStream]:
        """Per stream of ``table``; connects (with the sink's retries), reads, disconnects."""
        from etl.stored import summaries, summary_sql

        def read() -> list[Any]:
            if not self._describe(table):
                return []
            query = summary_sql(dataset, self._qualified(table).as_string(self.connection), self._quote)
            return self.connection.execute(query).fetchall()

        self.check()
        try:
            return summaries(self._retrying(read), len(dataset.stream_key))
        finally:
            self.close()

    def read(self, dataset: etl.Dataset, table: str, selection: etl.Selection) -> Any:
        """The selected rows, fetched whole in a session set to UTC."""
        import polars as pl

        def fetch() -> Any:
            if not self._describe(table):
                return pl.DataFrame()
            where, parameters = selection.sql_where(self._quote, "%s")
            self.connection.execute("SET TIME ZONE 'UTC'")
            cursor = self.connection.execute(f"SELECT * FROM {self._qualified(table).as_string(self.connection)} "
                                             f"WHERE {where} ORDER BY ts", parameters)
            names = [column.name for column in cursor.description or ()]
            return pl.DataFrame(cursor.fetchall(), schema=names, orient="row", infer_schema_length=None)

        self.check()
        try:
            return self._retrying(fetch).lazy()
        finally:
            self.close()

    def prune(self, dataset: etl.Dataset, table: str, match: dict[str, str], before: int | None) -> int:
        """One DELETE statement (a transaction of its own); connects with the sink's retries, disconnects."""
        from etl.stored import prune_sql
        from etl.timeframes import from_ms

        def delete() -> int:
            if not self._describe(table):
                return 0
            query = prune_sql(self._qualified(table).as_string(self.connection), match, before is not None,
                              self._quote, "%s")
            return self.connection.execute(query, [*match.values(), *([from_ms(before)] if before is not None
                                                                     else [])]).rowcount

        self.check()
        try:
            return self._retrying(delete)
        finally:
            self.close()

    def _quote(self, name: str) -> str:
        from psycopg import sql

        return sql.Identifier(name).as_string(self.connection)

    def _connect(self) -> None:
        import psycopg

        if self.connection is not None and not self.connection.closed:
            return
        extra = {} if "application_name" in self._conninfo else {"application_name": f"etl {self.context.pipeline}"}
        if "connect_timeout" not in self._conninfo:
            extra["connect_timeout"] = "10"
        try:
            self.connection = psycopg.connect(self.settings["dsn"], autocommit=True, **extra)
        except psycopg.OperationalError as exc:
            raise _ConnectionLost(f"cannot connect to {self.target}: {_first_line(exc)}") from exc

    def _retrying(self, action: Any) -> Any:
        """Run ``action`` until it succeeds, reconnecting after a lost connection; SinkError when out of tries."""
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

        retrying = Retrying(
            retry=retry_if_exception_type(_ConnectionLost),
            stop=stop_after_attempt(self.settings["retries"]),
            wait=wait_exponential_jitter(multiplier=0.2, max=5, jitter=0.2),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._connected, action)
        except _ConnectionLost as exc:
            raise SinkError(f"postgres {self.target}: {exc} (gave up after {self.settings['retries']} attempts)") \
                from exc

    def _connected(self, action: Any) -> Any:
        self._connect()
        return action()

    def _log_retry(self, state: Any) -> None:
        log.warning("postgres connection lost; retrying", target=self.target, attempt=state.attempt_number,
                    error=str(state.outcome.exception()))

    def _require_timescale(self) -> None:
        database = self._conninfo.get("dbname") or "the database"
        installed = self.connection.execute("SELECT 1 FROM pg_extension WHERE extname = %s", [TIMESCALE]).fetchone()
        if installed:
            return
        available = self.connection.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = %s", [TIMESCALE]
        ).fetchone()
        advice = (f"run CREATE EXTENSION {TIMESCALE} in {database}" if available
                  else "this server does not have TimescaleDB installed")
        raise SinkError(f"postgres {self.target}: hypertable = true needs the TimescaleDB extension, "
                        f"which {database} lacks; {advice}, or set hypertable = false")

    def write(self, frame: Any, dataset: etl.Dataset, table: str) -> None:
        types = {name: postgres_type(dtype, name, table) for name, dtype in frame.schema.items()}
        self._retrying(lambda: self._write_batch(frame, types, dataset, table))

    def _write_batch(self, frame: Any, types: dict[str, str], dataset: etl.Dataset, table: str) -> None:
        import psycopg

        try:
            with self.connection.transaction():
                columns = self._prepare_table(types, dataset, table)
                self._load(frame, types, columns, dataset.key, table)
        except psycopg.Error as exc:
            self._columns.pop(table, None)
            if self.connection.closed:
                raise _ConnectionLost(f"connection lost while writing table {table!r}: {_first_line(exc)}") \
                    from exc
            raise SinkError(f"postgres {self.target} table {table!r}: {_first_line(exc)}") from exc
        except SinkError:
            self._columns.pop(table, None)
            raise

    def _load(self, frame: Any, types: dict[str, str], columns: dict[str, str], key: tuple[str, ...],
              table: str) -> None:
        """COPY straight into the table when no key exists yet (the usual case), else upsert via a temp table.

        The direct COPY runs in a savepoint: the primary key refuses the first existing key, which for a
        rewritten batch is its first row, and the batch then takes the upsert path.
        """
        import psycopg

        try:
            with self.connection.transaction():
                self._copy(frame, self._qualified(table), types, table)
        except psycopg.errors.UniqueViolation:
            self._upsert(frame, types, columns, key, table)

    def _copy(self, frame: Any, target: Any, types: dict[str, str], table: str) -> None:
        from psycopg import sql

        columns = sql.SQL(", ").join(map(sql.Identifier, types))
        with self.connection.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(target, columns)
        ) as copy:
            for chunk in binary_copy(frame, table):
                copy.write(chunk)

    def _qualified(self, table: str) -> Any:
        from psycopg import sql

        return sql.Identifier(self.settings["schema"], table)

    def _prepare_table(self, types: dict[str, str], dataset: etl.Dataset, table: str) -> dict[str, str]:
        """Create the table on first use, add new columns, refuse type changes; return the table's columns."""
        from psycopg import sql

        existing = self._columns.get(table) or self._describe(table)
        if not existing:
            self._create(types, dataset, table)
            existing = dict(types)
        for column, kind in types.items():
            if column not in existing:
                self.connection.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    self._qualified(table), sql.Identifier(column), sql.SQL(kind)))
                existing[column] = kind
            elif existing[column] != kind:
                raise SinkError(f"postgres table {self.settings['schema']}.{table} column {column!r} is "
                                f"{existing[column]} but the batch has {kind}")
        self._columns[table] = existing
        return existing

    def _describe(self, table: str) -> dict[str, str]:
        rows = self.connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [self.settings["schema"], table],
        ).fetchall()
        return dict(rows)

    def _create(self, types: dict[str, str], dataset: etl.Dataset, table: str) -> None:
        from psycopg import sql

        key = sql.SQL(", ").join(map(sql.Identifier, dataset.key))
        self.connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(self.settings["schema"])))
        self.connection.execute(sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(
            self._qualified(table), _definitions(types, not_null=dataset.key), key))
        if self.settings["hypertable"]:
            if "ts" not in dataset.key:
                raise SinkError(f"postgres table {table!r}: a hypertable is partitioned on ts, which must be part "
                                f"of the key, but dataset {dataset.name} is keyed on {', '.join(dataset.key)}")
            self.connection.execute("SELECT create_hypertable(%s::regclass, 'ts')",
                                    [self._qualified(table).as_string(self.connection)])

    def _upsert(self, frame: Any, types: dict[str, str], columns: dict[str, str], key: tuple[str, ...],
                table: str) -> None:
        from psycopg import sql

        batch_columns = sql.SQL(", ").join(map(sql.Identifier, types))
        self.connection.execute(sql.SQL("CREATE TEMPORARY TABLE etl_batch ({}) ON COMMIT DROP").format(
            _definitions(types)))
        self._copy(frame, sql.Identifier("etl_batch"), types, table)
        values = [column for column in columns if column not in key]
        if values:
            stored = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in values)
            incoming = sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in values)
            assignments = sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in values)
            on_conflict = sql.SQL("DO UPDATE SET {} WHERE ROW({}) IS DISTINCT FROM ROW({})").format(
                assignments, stored, incoming)
        else:
            on_conflict = sql.SQL("DO NOTHING")
        self.connection.execute(sql.SQL(
            "INSERT INTO {} AS t ({}) SELECT {} FROM etl_batch ON CONFLICT ({}) {}"
        ).format(self._qualified(table), batch_columns, batch_columns,
                 sql.SQL(", ").join(map(sql.Identifier, key)), on_conflict))


class _ConnectionLost(Exception):
    """The server went away; the transaction is gone and the batch may be replayed on a new connection."""


def _definitions(types: dict[str, str], not_null: tuple[str, ...] = ()) -> Any:
    """Column definitions for CREATE TABLE: ``"name" type``, plus NOT NULL for the named columns."""
    from psycopg import sql

    return sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(sql.Identifier(column), sql.SQL(kind),
                                  sql.SQL(" NOT NULL" if column in not_null else ""))
        for column, kind in types.items()
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@etl.hookimpl
def register_sinks(register):
    register(PostgresSink)
