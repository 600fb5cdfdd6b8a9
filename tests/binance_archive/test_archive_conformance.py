"""The binance_archive source passes the source conformance suite against the fake archive (faults injected
into it) and the fake REST API (bars newer than the archive)."""

from __future__ import annotations

from typing import Any

import pytest
from archive_support import MONTHS

from etl.testing import SourceConformance
from etl.timeframes import DAY, iso


class TestBinanceArchiveConforms(SourceConformance):
    plugin = "binance_archive"
    symbols, timeframes = ("BTCUSDT", "ETHUSDT"), ("1h",)
    start, end = iso(MONTHS[0] + 20 * DAY), iso(MONTHS[1] + 5 * DAY)  # across a monthly file's end
    unknown_symbol = "NOPEUSDT"

    @pytest.fixture
    def source_server(self, vision):
        return vision.server

    @pytest.fixture
    def plugin_options(self, rest, tmp_path) -> dict[str, Any]:
        return {"rest_url": rest.url, "cache_dir": str(tmp_path / "cache"), "timeout": 2.0}
