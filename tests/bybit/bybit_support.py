"""What the tests of Bybit positioning and of Bybit's public trade archive share: one-pipeline projects into
DuckDB, run through the real CLI, and readers of what landed."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.testing import PipelineRun, run_cli, single_pipeline, write_pipeline
from etl.timeframes import DAY, floor_ts, from_ms, now_ms

PIPELINE = "bybit"
ARCHIVE_FIRST = floor_ts(now_ms(), "1d") - 6 * DAY  # the fake archive's first day; its last is yesterday


@dataclass
class Project:
    """A pipeline file with one source and a DuckDB sink, the commands to run on it, and what landed."""

    folder: Path
    path: Path

    def backfill(self, start: int, end: int, *args: str, env: dict[str, str] | None = None) -> PipelineRun:
        return run_cli("backfill", str(self.path), "--pipeline", PIPELINE, "--start", from_ms(start).isoformat(),
                       "--end", from_ms(end).isoformat(), *args, env=env)

    def args(self, start: int, end: int) -> tuple[str, ...]:
        return ("backfill", str(self.path), "--pipeline", PIPELINE, "--start", from_ms(start).isoformat(),
                "--end", from_ms(end).isoformat())

    def rows(self, table: str, symbol: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """``columns`` of ``symbol``'s rows in time order (then by the second column); ``ts`` as epoch ms."""
        import duckdb

        selected = ", ".join("epoch_ms(ts)" if column == "ts" else column for column in columns)
        with duckdb.connect(str(self.folder / "market.duckdb"), read_only=True) as connection:
            query = f"SELECT {selected} FROM {table} WHERE symbol = ? ORDER BY ts, {columns[1]}"
            return connection.execute(query, [symbol]).fetchall()

    def count(self, table: str) -> int:
        import duckdb

        with duckdb.connect(str(self.folder / "market.duckdb"), read_only=True) as connection:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def sources(self, table: str) -> set[str]:
        import duckdb

        with duckdb.connect(str(self.folder / "market.duckdb"), read_only=True) as connection:
            return {row[0] for row in connection.execute(f"SELECT DISTINCT source FROM {table}").fetchall()}

    def ledger_counters(self) -> dict[str, dict[str, int]]:
        """The counters of each stream's latest run, as the ledger recorded them."""
        with sqlite3.connect(self.folder / ".etl" / "ledger.db") as connection:
            rows = connection.execute("SELECT stream, counters FROM stream_runs ORDER BY rowid").fetchall()
        return {stream: json.loads(counters) for stream, counters in rows}

    def ledger_gaps(self) -> list[tuple[str, str, str]]:
        with sqlite3.connect(self.folder / ".etl" / "ledger.db") as connection:
            return connection.execute('SELECT DISTINCT stream, start, "end" FROM gaps ORDER BY start').fetchall()


def make_project(folder: Path, source: dict[str, Any], **pipeline_keys: Any) -> Project:
    pipeline = single_pipeline(source, [{"plugin": "duckdb", "path": "market.duckdb"}], name=PIPELINE,
                               **pipeline_keys)
    return Project(folder, write_pipeline(folder, pipeline))


def log_events(run: PipelineRun, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]
