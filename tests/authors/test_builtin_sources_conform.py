"""The built-in sources pass the source conformance suite, exactly as a third-party source would."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.testing import SourceConformance

OHLCV_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ohlcv"


class TestFilesSource(SourceConformance):
    plugin = "files"
    symbols = ("BTCUSDT", "ETHUSDT")
    timeframes = ("1h",)
    start, end = "2024-01-02", "2024-01-09"

    @pytest.fixture
    def plugin_options(self):
        return {"path": f"{OHLCV_FIXTURES}/{{symbol}}_{{timeframe}}.csv", "columns": {"ts": "timestamp"}}
