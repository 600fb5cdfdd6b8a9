"""The bybit source's ``positioning`` dataset passes the source conformance suite against the fake v5 API."""

from __future__ import annotations

from typing import Any

import pytest

from etl.testing import SourceConformance


class TestBybitPositioningConforms(SourceConformance):
    plugin, dataset = "bybit", "positioning"
    symbols, timeframes = ("BTCUSDT", "ETHUSDT"), ("4h",)
    start, end = "2023-09-01", "2024-01-01"  # three windows of 500 periods
    unknown_symbol = "NOPEUSDT"

    @pytest.fixture
    def source_server(self, bybit):
        return bybit.server

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"market": "linear", "retry_base_delay": 0.01, "timeout": 2.0}
