"""Fixtures of the exchange-source tests: fakes of Binance and Bybit, and one-pipeline files into DuckDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PIPELINE = "market"


@dataclass
class Pipeline:
    """A pipeline file with one source and a DuckDB sink, and the etl commands to run on it."""

    path: Path
    db: Path

    def run(self) -> Any:
        from etl.testing import run_cli

        return run_cli("run", str(self.path))

    def backfill(self, start: str, end: str) -> Any:
        from etl.testing import run_cli

        return run_cli("backfill", str(self.path), "--pipeline", PIPELINE, "--start", start, "--end", end)

    def rows(self, table: str, symbol: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """``columns`` of ``symbol``'s rows in time order; ``ts`` as epoch milliseconds."""
        import duckdb

        selected = ", ".join("epoch_ms(ts)" if column == "ts" else column for column in columns)
        with duckdb.connect(str(self.db), read_only=True) as connection:
            query = f"SELECT {selected} FROM {table} WHERE symbol = ? ORDER BY ts"
            return connection.execute(query, [symbol]).fetchall()

    def columns(self, table: str) -> list[str]:
        import duckdb

        with duckdb.connect(str(self.db), read_only=True) as connection:
            return [row[0] for row in connection.execute(f"DESCRIBE {table}").fetchall()]


@pytest.fixture
def pipeline(tmp_path: Path):
    """``pipeline(source, **pipeline_keys)`` writes the file and returns a ``Pipeline``."""
    from etl.testing import single_pipeline, write_pipeline

    def make(source: dict[str, Any], **keys: Any) -> Pipeline:
        sinks = [{"plugin": "duckdb", "path": "market.duckdb"}]
        path = write_pipeline(tmp_path, single_pipeline(source, sinks, name=PIPELINE, **keys))
        return Pipeline(path, tmp_path / "market.duckdb")

    return make


@pytest.fixture
def backfill_exactly(pipeline):
    """``backfill_exactly(source, columns, expected, start, end)``: backfill ``[start, end)`` of the source's
    symbols into DuckDB and assert that each symbol's stored ``columns`` are exactly
    ``expected(symbol, start_ms, end_ms)``: every bar, none twice, none missing. Returns the run."""
    from etl.timeframes import bar_starts, parse_time

    def backfill(source: dict[str, Any], columns: tuple[str, ...], expected: Any, start: str, end: str) -> Any:
        market = pipeline(source)
        result = market.backfill(start, end)
        assert result.exit_code == 0, result
        lo, hi = parse_time(start), parse_time(end)
        for symbol in source["symbols"]:
            stored = market.rows("ohlcv", symbol, columns)
            assert len(stored) == len(bar_starts(lo, hi, source["timeframes"][0]))
            assert stored == expected(symbol, lo, hi)
        assert market.columns("ohlcv")[:9] == ["source", "symbol", "timeframe", "ts", "open", "high", "low",
                                               "close", "volume"]
        return result

    return backfill


@pytest.fixture
def binance() -> Iterator[Any]:
    from fixtures.fake_binance import FakeBinance

    with FakeBinance() as fake:
        yield fake


@pytest.fixture
def bybit() -> Iterator[Any]:
    from fixtures.fake_bybit import FakeBybit

    with FakeBybit() as fake:
        yield fake


@pytest.fixture
def fast() -> dict[str, Any]:
    """Source options for quick retries, and a timeout the fakes can exceed cheaply."""
    return {"retry_base_delay": 0.01, "timeout": 1.0}


@pytest.fixture
def log_events():
    """``log_events(stderr, event)``: the JSON log lines of one ``event`` a command wrote."""

    def events(stderr: str, event: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("event") == event]

    return events
