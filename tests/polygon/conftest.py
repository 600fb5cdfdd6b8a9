"""Fixtures of the polygon tests: a local fake Polygon, its key in the environment, pipeline files into DuckDB."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # fixtures/ is imported from the repository root
    sys.path.insert(0, str(ROOT))

from polygon_pipeline import PolygonPipeline  # noqa: E402

from fixtures.fake_polygon import API_KEY, FakePolygon  # noqa: E402


@pytest.fixture
def fake_polygon() -> Iterator[FakePolygon]:
    with FakePolygon() as fake:
        yield fake


@pytest.fixture
def polygon_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The key the fake accepts, in ``POLYGON_API_KEY`` as a user's environment would hold it."""
    monkeypatch.setenv("POLYGON_API_KEY", API_KEY)
    return API_KEY


@pytest.fixture
def polygon_pipeline(tmp_path: Path, fake_polygon: FakePolygon, polygon_key):
    """``polygon_pipeline(symbols=..., **source_keys)``: a pipeline file "stocks" reading the fake into DuckDB;
        a key given as None is left out."""

    def make(symbols: tuple[str, ...] = ("X:BTCUSD",), **keys: Any) -> PolygonPipeline:
        source = {"plugin": "polygon", "symbols": list(symbols), "timeframes": ["1h"], "start": "2024-01-01",
                  "end": "2024-01-02", "api_key": "${POLYGON_API_KEY}", "base_url": fake_polygon.url,
                  "requests_per_minute": 60_000, **keys}
        return PolygonPipeline.write(tmp_path, {key: value for key, value in source.items() if value is not None})

    return make
