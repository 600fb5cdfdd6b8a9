"""The run ledger: a SQLite database in the state dir with one row per run and one per stream run.

It is what ``etl status`` reads and what a person queries when asking "what happened last night".
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

from .gaps import Gap
from .report import StreamResult, UnitRun
from .timeframes import iso, now_ms, parse_time

# Plain sqlite3 for a handful of statements: sqlite-utils imports pandas and numpy when they are installed
# (half a second of a cron run's start-up) only to map types the ledger never stores.
_SCHEMA = """
create table if not exists runs (
    id text primary key, command text, pipeline text, started text, finished text, status text,
    streams integer, rows integer, failed integer, quarantined integer, duration_s float
);
create table if not exists stream_runs (
    run_id text references runs(id), pipeline text, stream text, window_start text, window_end text,
    rows integer, counters text, duration_s float, finished text, status text, error text
);
create index if not exists idx_stream_runs_pipeline_stream on stream_runs (pipeline, stream);
create table if not exists gaps (
    run_id text references runs(id), pipeline text, stream text, start text, "end" text, bars integer, source text
);
create index if not exists idx_gaps_pipeline_stream on gaps (pipeline, stream);
create index if not exists idx_gaps_stream on gaps (stream);
create table if not exists gap_checks (
    pipeline text, stream text, start text, "end" text, outcome text, checked text
);
create table if not exists unit_runs (
    run_id text references runs(id), pipeline text, unit text, window_start text, window_end text,
    worker text, seconds float, rows integer, status text, error text
);
create index if not exists idx_unit_runs_pipeline on unit_runs (pipeline);
create table if not exists run_symbols (
    run_id text references runs(id), pipeline text, symbol text, status text, quote_volume float,
    selected integer, note text
);
create index if not exists idx_run_symbols_pipeline on run_symbols (pipeline);
create table if not exists fallbacks (
    run_id text references runs(id), pipeline text, stream text, window_start text, window_end text,
    source text, fallback text, reason text
);
create index if not exists idx_fallbacks_pipeline_stream on fallbacks (pipeline, stream);
"""
_STREAM_RUN_COLUMNS = ("run_id", "pipeline", "stream", "window_start", "window_end", "rows", "counters",
                       "duration_s", "finished", "status", "error")
_GAP_COLUMNS = ("run_id", "pipeline", "stream", "start", "end", "bars", "source")
_UNIT_RUN_COLUMNS = ("run_id", "pipeline", "unit", "window_start", "window_end", "worker", "seconds", "rows",
                     "status", "error")
_FALLBACK_COLUMNS = ("run_id", "pipeline", "stream", "window_start", "window_end", "source", "fallback", "reason")
_RUN_SYMBOL_COLUMNS = ("run_id", "pipeline", "symbol", "status", "quote_volume", "selected", "note")


class Ledger:
    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "ledger.db"
        self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        with self._lock:
            self.db.executescript(_SCHEMA)
            _add_missing_columns(self.db)

    def start_run(self, command: str, pipeline: str) -> str:
        run_id = uuid.uuid4().hex
        with self._lock, self.db:
            self.db.execute(
                "insert into runs (id, command, pipeline, started, status) values (?, ?, ?, ?, 'running')",
                (run_id, command, pipeline, iso(now_ms())),
            )
        return run_id

    def record_streams(self, run_id: str, results: list[StreamResult]) -> None:
        """One row per stream and one per window a fallback fetched, each table in one commit: a commit per
        stream (a sync each) made a 250-stream run wait about half a second at its end. Gaps are not among them:
        ``record_gaps`` writes each as it is found."""
        rows, fallbacks = [], []
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
            fallbacks.extend(
                {"run_id": run_id, "pipeline": result.pipeline, "stream": result.stream.label,
                 "window_start": iso(record.start), "window_end": iso(record.end), "source": record.source,
                 "fallback": record.fallback, "reason": record.reason}
                for record in result.fallbacks
            )
        with self._lock, self.db:
            _insert(self.db, "stream_runs", _STREAM_RUN_COLUMNS, rows)
            _insert(self.db, "fallbacks", _FALLBACK_COLUMNS, fallbacks)

    def record_gaps(self, run_id: str, pipeline: str, source: str, stream: str, gaps: list[Gap]) -> None:
        """Record gaps of ``stream`` as they are found, before the rows after them are committed: a reader that
        sees those rows (``enrich`` in another process, while ``etl stream`` runs) sees the gaps too. ``source``
        is the name the stream's rows are stored under."""
        with self._lock, self.db:
            _insert(self.db, "gaps", _GAP_COLUMNS, [
                {"run_id": run_id, "pipeline": pipeline, "stream": stream, "start": iso(gap.start),
                 "end": iso(gap.end), "bars": gap.bars, "source": source} for gap in gaps
            ])

    def record_units(self, run_id: str, pipeline: str, units: list[UnitRun]) -> None:
        """Where each unit of the run ran (a worker's address, or ``local``) and how long it took."""
        rows = [{"run_id": run_id, "pipeline": pipeline, "unit": unit.unit, "window_start": iso(unit.start),
                 "window_end": iso(unit.end), "worker": unit.worker, "seconds": round(unit.seconds, 3),
                 "rows": unit.rows, "status": "failed" if unit.error else "ok", "error": unit.error}
                for unit in units]
        with self._lock, self.db:
            _insert(self.db, "unit_runs", _UNIT_RUN_COLUMNS, rows)

    def last_run_units(self, pipeline: str) -> list[dict[str, Any]]:
        """The units of the last run of ``pipeline`` that ran any, in the order they finished."""
        return self._query(
            "select * from unit_runs where run_id = (select run_id from unit_runs where pipeline = ? "
            "order by rowid desc limit 1) order by rowid",
            pipeline,
        )

    def finish_run(self, run_id: str, status: str, results: list[StreamResult], duration: float) -> None:
        with self._lock, self.db:
            self.db.execute(
                "update runs set finished = ?, status = ?, streams = ?, rows = ?, failed = ?, quarantined = ?, "
                "duration_s = ? where id = ?",
                (iso(now_ms()), status, len(results), sum(r.rows for r in results),
                 sum(1 for r in results if r.error), sum(r.counters.get("quarantined", 0) for r in results),
                 round(duration, 3), run_id),
            )

    def last_stream_runs(self, pipeline: str) -> dict[str, dict[str, Any]]:
        """The most recent ledger row of each stream of ``pipeline``."""
        rows = self._query(
            "select * from stream_runs where rowid in "
            "(select max(rowid) from stream_runs where pipeline = ? group by stream)",
            pipeline,
        )
        return {row["stream"]: row for row in rows}

    def gaps(self, pipeline: str) -> list[dict[str, Any]]:
        """Every gap any run of ``pipeline`` found, once each, by stream and time."""
        return self._query(
            'select stream, start, "end", max(bars) as bars from gaps where pipeline = ? '
            'group by stream, start, "end" order by stream, start',
            pipeline,
        )

    def gaps_of(self, stream: str, source: str) -> list[tuple[int, int]]:
        """The windows (epoch ms) of every gap any pipeline recorded for ``stream`` of rows stored under
        ``source``, whoever captured them, in time order."""
        rows = self._query('select distinct start, "end" from gaps where stream = ? and source = ? order by start',
                           stream, source)
        return [(parse_time(row["start"]), parse_time(row["end"])) for row in rows]

    def gap_outcomes(self, pipeline: str) -> dict[tuple[str, str, str], dict[str, Any]]:
        """What ``etl heal`` found of each gap it fetched again, by (stream, start, end): ``filled`` or
        ``confirmed`` (the venue answered with no rows again), and when."""
        rows = self._query('select * from gap_checks where rowid in (select max(rowid) from gap_checks '
                           'where pipeline = ? group by stream, start, "end")', pipeline)
        return {(row["stream"], row["start"], row["end"]): row for row in rows}

    def record_gap_outcomes(self, pipeline: str, outcomes: list[tuple[str, str, str, str]]) -> None:
        """Record (stream, start, end, outcome) of each gap a heal fetched, dated now."""
        checked = iso(now_ms())
        with self._lock, self.db:
            self.db.executemany('insert into gap_checks (pipeline, stream, start, "end", outcome, checked) '
                                'values (?, ?, ?, ?, ?, ?)',
                                [(pipeline, *outcome, checked) for outcome in outcomes])

    def record_symbols(self, run_id: str, pipeline: str, rows: list[dict[str, Any]]) -> None:
        """What a selector resolved to at the start of a run: each symbol with its listing status and 24h quote
        volume, ``selected`` 1, and each symbol of the previous run it dropped, ``selected`` 0 with the reason."""
        with self._lock, self.db:
            _insert(self.db, "run_symbols", _RUN_SYMBOL_COLUMNS, [
                {"run_id": run_id, "pipeline": pipeline, "quote_volume": None, "note": None, **row} for row in rows
            ])

    def last_symbols(self, pipeline: str) -> tuple[str, ...]:
        """The symbols the last run of ``pipeline`` that resolved a selector selected."""
        rows = self._query(
            "select symbol from run_symbols where selected = 1 and run_id = (select run_id from run_symbols "
            "where pipeline = ? order by rowid desc limit 1) order by rowid", pipeline)
        return tuple(row["symbol"] for row in rows)

    def forget_gaps(self, pipeline: str, streams: list[str], before: str | None) -> int:
        """Delete the recorded gaps (and heal outcomes) of ``streams``, those ending by ``before`` when given
        (``etl prune``); how many gap rows went."""
        marks = ", ".join("?" for _ in streams)
        where = f'pipeline = ? and stream in ({marks})' + (' and "end" <= ?' if before else "")
        parameters = [pipeline, *streams, *([before] if before else [])]
        with self._lock, self.db:
            self.db.execute(f"delete from gap_checks where {where}", parameters)
            return self.db.execute(f"delete from gaps where {where}", parameters).rowcount

    def _query(self, sql: str, *parameters: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self.db.execute(sql, parameters)]

    def close(self) -> None:
        self.db.close()


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Columns added since a ledger was created: an older state dir keeps its history and gains them."""
    if "source" not in {row[1] for row in db.execute("pragma table_info(gaps)")}:
        db.execute("alter table gaps add column source text")


def _insert(db: sqlite3.Connection, table: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    names = ", ".join(f'"{name}"' for name in columns)
    marks = ", ".join("?" for _ in columns)
    db.executemany(f"insert into {table} ({names}) values ({marks})",
                   [tuple(row[name] for name in columns) for row in rows])
