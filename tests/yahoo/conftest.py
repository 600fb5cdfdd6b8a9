"""Fixtures for the yahoo source: a local fake Yahoo, pipeline files pointing at it, the rows that landed."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # fixtures/ and tests/ are imported from the repository root
    sys.path.insert(0, str(ROOT))

from fixtures.fake_yahoo import FakeYahoo  # noqa: E402


@pytest.fixture
def fake_yahoo() -> Iterator[FakeYahoo]:
    with FakeYahoo() as fake:
        yield fake


@pytest.fixture
def yahoo_pipeline(tmp_path: Path, fake_yahoo: FakeYahoo):
    """Write a one-pipeline file ("stocks") reading from the fake into data/yahoo.duckdb; returns its path.

    ``features`` adds the features transform with those features.
    """

    def write(symbols: list[str], timeframes: list[str] | None = None, start: str = "2020-01-01",
              end: str | None = None, features: list[str] | None = None, **options: Any) -> Path:
        settings = {"base_url": fake_yahoo.url, "requests_per_minute": 6000, **options}
        lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
        if timeframes is not None:
            lines.append(f"timeframes = {json.dumps(timeframes)}")
        if end is not None:
            lines.append(f'end = "{end}"')
        path = tmp_path / "pipelines.toml"
        path.write_text(textwrap.dedent(f"""\
            [pipelines.stocks.source]
            plugin = "yahoo"
            symbols = {json.dumps(symbols)}
            start = "{start}"
            """) + "\n".join(lines) + textwrap.dedent("""

            [[pipelines.stocks.sinks]]
            plugin = "duckdb"
            path = "data/yahoo.duckdb"
            """))
        if features:
            transform = f'[[pipelines.stocks.transforms]]\nplugin = "features"\ninclude = {json.dumps(features)}\n'
            path.write_text(path.read_text() + "\n" + transform)
        return path

    return write


@pytest.fixture
def stored():
    """Every row a pipeline's DuckDB sink holds, ordered by symbol and time."""

    def read(pipeline: Path, table: str = "ohlcv") -> pl.DataFrame:
        with duckdb.connect(str(pipeline.parent / "data" / "yahoo.duckdb"), read_only=True) as connection:
            return pl.from_arrow(connection.sql(f"SELECT * FROM {table} ORDER BY symbol, ts").to_arrow_table())

    return read


@pytest.fixture
def log_events():
    """The JSON log lines of one event in a command's stderr."""

    def find(stderr: str, event: str) -> list[dict[str, Any]]:
        lines = (json.loads(line) for line in stderr.splitlines() if line.startswith("{"))
        return [line for line in lines if line.get("event") == event]

    return find
