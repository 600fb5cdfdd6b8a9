"""A one-pipeline file into DuckDB, the etl commands on it, and what landed and what the ledger recorded."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PIPELINE = "stocks"


@dataclass
class PolygonPipeline:
    path: Path

    @classmethod
    def write(cls, folder: Path, source: dict[str, Any], **keys: Any) -> PolygonPipeline:
        from etl.testing import single_pipeline, write_pipeline

        sinks = [{"plugin": "duckdb", "path": "market.duckdb"}]
        return cls(write_pipeline(folder, single_pipeline(source, sinks, name=PIPELINE, **keys)))

    def run(self, *options: str) -> Any:
        from etl.testing import run_cli

        return run_cli("run", str(self.path), *options)

    def backfill(self, start: str, end: str) -> Any:
        from etl.testing import run_cli

        return run_cli("backfill", str(self.path), "--pipeline", PIPELINE, "--start", start, "--end", end)

    def rows(self, columns: str = "source, symbol, epoch_ms(ts), open, close") -> list[tuple[Any, ...]]:
        import duckdb

        with duckdb.connect(str(self.path.parent / "market.duckdb"), read_only=True) as connection:
            return connection.execute(f"SELECT {columns} FROM ohlcv ORDER BY symbol, ts").fetchall()

    def ledger(self, table: str) -> list[dict[str, Any]]:
        with sqlite3.connect(self.path.parent / ".etl" / "ledger.db") as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(f"SELECT * FROM {table} ORDER BY rowid")]
