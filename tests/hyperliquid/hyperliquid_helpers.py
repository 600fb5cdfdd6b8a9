"""Helpers of the Hyperliquid tests: pipeline files, the CLI, stored rows and log records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.testing.pipelines import PipelineRun, run_cli, single_pipeline, write_pipeline
from etl.timeframes import HOUR, parse_time
from fixtures.fake_hyperliquid_archive import l2book_key, l2book_lines, unusual_lines

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


@dataclass
class Archive:
    """A seeded bucket and the lines of every object in it (the truth tests compare against)."""

    bucket: str
    lines: dict[str, list[str]]


DAY0 = parse_time("2023-06-01")
MISSING_HOUR = ("ETH", 5)
UNUSUAL_HOUR = ("BTC", 7)


def archive_objects(coins: tuple[str, ...], hours: range, skip: tuple[str, int] | None = None,
                    unusual: tuple[str, int] | None = None) -> dict[str, list[str]]:
    """l2Book lines for each coin and hour offset from 2023-06-01 (a tuple names a coin's hour to leave out
    or to enrich with unusual lines)."""
    objects = {}
    for coin in coins:
        for offset in hours:
            if (coin, offset) == skip:
                continue
            hour = DAY0 + offset * HOUR
            lines = l2book_lines(coin, hour)
            if (coin, offset) == unusual:
                lines[32:32] = unusual_lines(coin, hour)
            objects[l2book_key(coin, hour)] = lines
    return objects
