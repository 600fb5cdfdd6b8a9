"""Fixtures of the binance_archive tests: the fake archive and the fake REST API serving one market (spot, USD-M
and COIN-M alike), and pipelines that backfill from them into DuckDB through the real CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from archive_support import FIRST, NOW, PIPELINE, ROOMY_LIMITS, TRADE_EVERY_MS, Project

from etl.testing import single_pipeline, write_pipeline
from etl.timeframes import from_ms
from fixtures.fake_binance import FakeBinance
from fixtures.fake_binance_vision import FakeBinanceVision


@pytest.fixture(autouse=True)
def still_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock stands at ``NOW`` (``ETL_CLOCK`` at speed 0) in the test, the fakes and the ``etl`` it runs: the
    months, days and hours the tests derive at import agree with what the source reads, even when the session
    crosses an hour, midnight or a month's end."""
    monkeypatch.setenv("ETL_CLOCK", f"0@{NOW}")


@pytest.fixture
def vision() -> Iterator[FakeBinanceVision]:
    with FakeBinanceVision(first_month=f"{from_ms(FIRST):%Y-%m}", trade_every_ms=TRADE_EVERY_MS) as fake:
        yield fake


@pytest.fixture
def rest() -> Iterator[FakeBinance]:
    with FakeBinance(trade_every_ms=TRADE_EVERY_MS, coinm=("BTCUSD_PERP",), **ROOMY_LIMITS) as fake:
        yield fake


@pytest.fixture
def project(tmp_path: Path, vision: FakeBinanceVision, rest: FakeBinance):
    """``project(folder, pipeline_keys, **source_keys)``: a pipeline of the archive source against the two fakes."""

    def make(folder: str = "project", pipeline_keys: dict[str, Any] | None = None, **keys: Any) -> Project:
        source = {"plugin": "binance_archive", "symbols": ["BTCUSDT"], "timeframes": ["1h"], "base_url": vision.url,
                  "rest_url": rest.url, "cache_dir": str(tmp_path / "cache"), **keys}
        source = {key: value for key, value in source.items() if value is not None}  # None: leave the key out
        pipeline = single_pipeline(source, [{"plugin": "duckdb", "path": "market.duckdb"}], name=PIPELINE,
                                   **(pipeline_keys or {}))
        return Project(tmp_path / folder, write_pipeline(tmp_path / folder, pipeline))

    return make
