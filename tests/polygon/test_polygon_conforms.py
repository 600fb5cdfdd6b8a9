"""The polygon source passes the source conformance suite against the local fake Polygon."""

from __future__ import annotations

import pytest

from etl.testing import SourceConformance
from fixtures.fake_polygon import API_KEY, FakePolygon


class PolygonConformance(SourceConformance):
    plugin = "polygon"

    @pytest.fixture
    def source_server(self):
        with FakePolygon(page_size=7) as fake:
            yield fake.server

    @pytest.fixture
    def plugin_options(self):
        return {"api_key": API_KEY, "requests_per_minute": 60_000, "timeout": 2.0}


class TestPolygonHourly(PolygonConformance):
    symbols, timeframes = ("X:BTCUSD", "AAPL"), ("1h",)
    start, end = "2024-01-01", "2024-01-04"


class TestPolygonDaily(PolygonConformance):
    symbols, timeframes = ("AAPL",), ("1d",)
    start, end = "2024-01-01", "2024-02-01"
