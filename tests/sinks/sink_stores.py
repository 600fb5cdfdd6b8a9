"""Read back what each of the four sinks stored, with each store's own client, never through the sink.

Every reader returns the table as a polars DataFrame (no rows and no columns when the table does not
exist) so tests compare stores row for row with ``etl.testing.checks``. ``fixture_candles`` says what a
pipeline reading ``fixtures/ohlcv`` with the ``files`` source must store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import psycopg
from psycopg import sql

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ohlcv"


def fixture_candles(symbols: tuple[str, ...], timeframes: tuple[str, ...], start: str = "2000-01-01",
                    end: str = "2100-01-01") -> pl.DataFrame:
    """The fixture candles of ``[start, end)`` exactly as the ``files`` source delivers them."""
    frames = [
        pl.read_csv(FIXTURES / f"{symbol}_{timeframe}.csv").select(
            pl.lit("files").alias("source"), pl.lit(symbol).alias("symbol"), pl.lit(timeframe).alias("timeframe"),
            pl.col("timestamp").str.to_datetime(time_unit="ms", time_zone="UTC").alias("ts"),
            "open", "high", "low", "close", "volume", pl.col("trades").cast(pl.Int64),
        )
        for symbol in symbols for timeframe in timeframes
    ]
    window = pl.col("ts").is_between(pl.lit(start).str.to_datetime(time_unit="ms", time_zone="UTC"),
                                     pl.lit(end).str.to_datetime(time_unit="ms", time_zone="UTC"), closed="left")
    return pl.concat(frames).filter(window)


def read_duckdb(path: Path, table: str) -> pl.DataFrame:
    if not Path(path).exists():
        return pl.DataFrame()
    with duckdb.connect(str(path), read_only=True) as connection:
        found = connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                   [table]).fetchall()[0][0]
        return connection.sql(f'SELECT * FROM "{table}"').pl() if found else pl.DataFrame()


def parquet_files(root: Path, table: str) -> list[Path]:
    return sorted(Path(root, table).rglob("*.parquet"))


def read_parquet(root: Path, table: str) -> pl.DataFrame:
    """Every file of the table on its own (files written before a new column lack it), stacked."""
    files = parquet_files(root, table)
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(file, hive_partitioning=False) for file in files], how="diagonal")


def read_sqlite(path: Path, table: str) -> pl.DataFrame:
    """Rows with columns typed by their declared SQLite type (timestamps stay text, as stored)."""
    kinds = {"TEXT": pl.String, "REAL": pl.Float64, "INTEGER": pl.Int64}
    with sqlite3.connect(path) as connection:
        declared = connection.execute("SELECT name, type FROM pragma_table_info(?)", [table]).fetchall()
        if not declared:
            return pl.DataFrame()
        rows = connection.execute(f'SELECT * FROM "{table}"').fetchall()
    return pl.DataFrame(rows, schema={name: kinds[kind] for name, kind in declared}, orient="row")


_POSTGRES_READ = {  # data_type -> (select expression, polars type); timestamps come back as epoch ms
    "text": ("{}", pl.String),
    "double precision": ("{}", pl.Float64),
    "real": ("{}", pl.Float32),
    "bigint": ("{}", pl.Int64),
    "integer": ("{}", pl.Int64),
    "smallint": ("{}", pl.Int64),
    "boolean": ("{}::int", pl.Int64),
    "timestamp with time zone": ("(extract(epoch FROM {}) * 1000)::bigint", pl.Int64),
}


def read_postgres(dsn: str, schema: str, table: str) -> pl.DataFrame:
    """COPY the table out as CSV (fast for a million rows; NULL unquoted, empty strings quoted)."""
    with psycopg.connect(dsn) as connection:
        columns = connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", [schema, table]).fetchall()
        if not columns:
            return pl.DataFrame()
        selected = sql.SQL(", ").join(
            sql.SQL(_POSTGRES_READ[kind][0] + " AS {}").format(sql.Identifier(name), sql.Identifier(name))
            for name, kind in columns)
        query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT csv, HEADER)").format(
            selected, sql.Identifier(schema, table))
        data = bytearray()
        with connection.cursor().copy(query) as copy:
            for chunk in copy:
                data += chunk
    return pl.read_csv(bytes(data), schema={name: _POSTGRES_READ[kind][1] for name, kind in columns})


def read_store(plugin: str, settings: dict[str, Any], table: str) -> pl.DataFrame:
    """The table as the sink ``plugin`` configured with ``settings`` stored it."""
    if plugin == "duckdb":
        return read_duckdb(settings["path"], table)
    if plugin == "parquet":
        return read_parquet(settings["path"], table)
    if plugin == "sqlite":
        return read_sqlite(settings["path"], table)
    if plugin == "postgres":
        return read_postgres(settings["dsn"], settings.get("schema", "public"), table)
    raise ValueError(f"no reader for sink {plugin!r}")
