"""Prometheus textfile metrics, written after every run for node_exporter's textfile collector.

The file describes every stream of the pipeline file as the state dir knows it (not only the run that wrote
it), so a scrape between runs of different pipelines sees them all. It is replaced atomically: the collector
never reads half a file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write_text
from .health import StreamHealth
from .timeframes import parse_time

HELP = {
    "etl_stream_lag_seconds": "Seconds from the first bar not stored to now (or the pipeline's end).",
    "etl_stream_max_lag_seconds": "The stream's max_lag.",
    "etl_stream_last_run_rows": "Rows the stream's last run stored.",
    "etl_stream_last_run_failed": "1 when the stream's last run failed.",
    "etl_stream_last_success_timestamp_seconds": "When a run of the stream last succeeded (Unix time).",
    "etl_stream_open_gaps": "Gaps recorded and neither filled nor confirmed.",
    "etl_run_rows": "Rows stored by the pipeline's last run.",
    "etl_run_failed_streams": "Streams that failed in the pipeline's last run.",
    "etl_run_duration_seconds": "Duration of the pipeline's last run.",
    "etl_run_finished_timestamp_seconds": "When the pipeline's last run finished (Unix time).",
}
Sample = tuple[str, dict[str, str], Any]


def write_metrics(path: Path, health: list[StreamHealth], state_dir: Path) -> None:
    """Replace ``path`` with the metrics of every stream in ``health`` and of each pipeline's last run."""
    with sqlite3.connect(state_dir / "ledger.db", timeout=30) as db:
        samples = [*_stream_samples(health, db), *_run_samples(sorted({h.pipeline for h in health}), db)]
    families = {name: [(labels, value) for metric, labels, value in samples if metric == name and value is not None]
                for name in HELP}
    atomic_write_text(path, "".join(_family(name, family) for name, family in families.items()))


def _stream_samples(health: list[StreamHealth], db: sqlite3.Connection) -> Iterator[Sample]:
    successes = {(pipeline, stream): finished for pipeline, stream, finished in db.execute(
        "select pipeline, stream, max(finished) from stream_runs where status = 'ok' group by pipeline, stream")}
    for stream in health:
        labels = {"pipeline": stream.pipeline, "stream": stream.stream}
        run, success = stream.last_run, successes.get((stream.pipeline, stream.stream))
        yield "etl_stream_lag_seconds", labels, stream.lag_ms / 1000 if stream.lag_ms is not None else None
        yield "etl_stream_max_lag_seconds", labels, stream.max_lag_ms / 1000
        yield "etl_stream_last_run_rows", labels, run.get("rows")
        yield "etl_stream_last_run_failed", labels, int(run["status"] == "failed") if run else None
        yield "etl_stream_last_success_timestamp_seconds", labels, _unix(success)
        yield "etl_stream_open_gaps", labels, len(stream.open_gaps)


def _run_samples(pipelines: list[str], db: sqlite3.Connection) -> Iterator[Sample]:
    runs = {row[0]: row for row in db.execute(
        "select pipeline, rows, failed, duration_s, finished from runs where rowid in "
        "(select max(rowid) from runs where finished is not null group by pipeline)")}
    for pipeline in pipelines:
        if pipeline in runs:
            _, rows, failed, duration, finished = runs[pipeline]
            labels = {"pipeline": pipeline}
            yield "etl_run_rows", labels, rows
            yield "etl_run_failed_streams", labels, failed
            yield "etl_run_duration_seconds", labels, duration
            yield "etl_run_finished_timestamp_seconds", labels, _unix(finished)


def _unix(text: str | None) -> float | None:
    return parse_time(text) / 1000 if text else None


def _family(name: str, samples: list[tuple[dict[str, str], Any]]) -> str:
    lines = [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        shown = ",".join(f'{key}="{_escape(text)}"' for key, text in labels.items())
        lines.append(f"{name}{{{shown}}} {float(value)!r}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
