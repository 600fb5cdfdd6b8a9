"""Helpers of the Hyperliquid tests: pipeline files, the CLI, stored rows and log records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.testing.pipelines import PipelineRun, run_cli, single_pipeline, write_pipeline

DB = "out.duckdb"


def pipeline_file(folder: Path, source: dict[str, Any], name: str = "hl", **keys: Any) -> Path:
    """A one-pipeline file writing to ``folder/out.duckdb``."""
    return write_pipeline(folder, single_pipeline(source, [{"plugin": "duckdb", "path": DB}], name=name, **keys))


def pipelines_file(folder: Path, sources: dict[str, dict[str, Any]]) -> Path:
    """A file of several pipelines (name -> source table), all writing to ``folder/out.duckdb``."""
    sink = {"plugin": "duckdb", "path": DB}
    return write_pipeline(folder, {"pipelines": {name: {"source": source, "sinks": [sink]}
                                                 for name, source in sources.items()}})


def etl(*args: str) -> PipelineRun:
    """``etl ARGS`` in-process, logs as JSON lines; -v so debug events (request weights) are visible."""
    return run_cli("-v", *args)


def stored(folder: Path, table: str, order: str = "symbol, ts") -> pl.DataFrame:
    with duckdb.connect(str(folder / DB), read_only=True) as connection:
        return connection.sql(f'SELECT * FROM "{table}" ORDER BY {order}').pl()


def log_events(run: PipelineRun, event: str) -> list[dict[str, Any]]:
    """The JSON log records of ``event`` a run wrote."""
    records = []
    for line in run.output.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                records.append(record)
    return records
