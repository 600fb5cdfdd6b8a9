"""The run ledger: a SQLite database in the state dir with one row per run and one per stream run.

It is what ``etl status`` reads and what a person queries when asking "what happened last night".
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from .report import StreamResult
from .timeframes import iso, now_ms


def _sqlite_utils() -> Any:
    """sqlite-utils imports pandas and numpy when they are installed, only to map their types: 0.5 s, a third
    of a cron run's start-up. The ledger stores neither, so they stay hidden while sqlite-utils loads."""
    if "sqlite_utils" in sys.modules:
        return sys.modules["sqlite_utils"]
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes "import pandas" raise ImportError
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            del sys.modules[name]
    return sqlite_utils


class Ledger:
    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "ledger.db"
        connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self.db = _sqlite_utils().Database(connection)
        self.db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        self._ensure_tables()

    def _ensure_tables(self) -> None:
        with self._lock:
            if "runs" not in self.db.table_names():
                self.db["runs"].create(
                    {"id": str, "command": str, "pipeline": str, "started": str, "finished": str, "status": str,
                     "streams": int, "rows": int, "failed": int, "quarantined": int, "duration_s": float},
                    pk="id",
                )
            if "stream_runs" not in self.db.table_names():
                self.db["stream_runs"].create(
                    {"run_id": str, "pipeline": str, "stream": str, "window_start": str, "window_end": str,
                     "rows": int, "counters": str, "duration_s": float, "finished": str, "status": str,
                     "error": str},
                    foreign_keys=[("run_id", "runs", "id")],
                )
                self.db["stream_runs"].create_index(["pipeline", "stream"])
            if "gaps" not in self.db.table_names():
                self.db["gaps"].create(
                    {"run_id": str, "pipeline": str, "stream": str, "start": str, "end": str, "bars": int},
                    foreign_keys=[("run_id", "runs", "id")],
                )
                self.db["gaps"].create_index(["pipeline", "stream"])

    def start_run(self, command: str, pipeline: str) -> str:
        run_id = uuid.uuid4().hex
        with self._lock:
            self.db["runs"].insert(
                {"id": run_id, "command": command, "pipeline": pipeline, "started": iso(now_ms()), "status": "running"}
            )
        return run_id

    def record_streams(self, run_id: str, results: list[StreamResult]) -> None:
        """One row per stream and one per gap, each table in one commit: a commit per stream (a sync each)
        made a 250-stream run wait about half a second at its end."""
        rows, gaps = [], []
        for result in results:
            rows.append({
                "run_id": run_id,
                "pipeline": result.pipeline,
                "stream": result.stream.label,
                "window_start": iso(result.window_start) if result.window_start is not None else None,
                "window_end": iso(result.window_end) if result.window_end is not None else None,
                "rows": result.rows,
                "counters": json.dumps(result.counters, sort_keys=True),
                "duration_s": round(result.duration, 3),
                "finished": iso(now_ms()),
                "status": "failed" if result.error else ("skipped" if result.skipped else "ok"),
                "error": result.error or result.skipped,
            })
            gaps.extend(
                {"run_id": run_id, "pipeline": result.pipeline, "stream": result.stream.label,
                 "start": iso(gap.start), "end": iso(gap.end), "bars": gap.bars}
                for gap in result.gaps
            )
        with self._lock:
            self.db["stream_runs"].insert_all(rows)
            if gaps:
                self.db["gaps"].insert_all(gaps)

    def finish_run(self, run_id: str, status: str, results: list[StreamResult], duration: float) -> None:
        with self._lock:
            self.db["runs"].update(
                run_id,
                {
                    "finished": iso(now_ms()),
                    "status": status,
                    "streams": len(results),
                    "rows": sum(r.rows for r in results),
                    "failed": sum(1 for r in results if r.error),
                    "quarantined": sum(r.counters.get("quarantined", 0) for r in results),
                    "duration_s": round(duration, 3),
                },
            )

    def last_stream_runs(self, pipeline: str) -> dict[str, dict[str, Any]]:
        """The most recent ledger row of each stream of ``pipeline``."""
        rows = self.db.query(
            "select * from stream_runs where rowid in "
            "(select max(rowid) from stream_runs where pipeline = ? group by stream)",
            [pipeline],
        )
        return {row["stream"]: row for row in rows}

    def gaps(self, pipeline: str) -> list[dict[str, Any]]:
        """Every gap any run of ``pipeline`` found, once each, by stream and time."""
        return list(self.db.query(
            "select stream, start, end, max(bars) as bars from gaps where pipeline = ? "
            "group by stream, start, end order by stream, start",
            [pipeline],
        ))

    def close(self) -> None:
        self.db.conn.close()
