"""The bybit_archive source passes the source conformance suite against the fake public.bybit.com (faults
injected into it)."""

from __future__ import annotations

from typing import Any

import pytest
from bybit_support import ARCHIVE_FIRST

from etl.testing import SourceConformance
from etl.timeframes import DAY, HOUR, iso


class TestBybitArchiveConforms(SourceConformance):
    plugin = "bybit_archive"
    dataset = "trades"
    symbols = ("BTCUSDT", "BTCUSD")
    start, end = iso(ARCHIVE_FIRST + 5 * HOUR), iso(ARCHIVE_FIRST + 2 * DAY + 7 * HOUR)  # across two files' ends
    unknown_symbol = "NOPEUSDT"

    @pytest.fixture
    def source_server(self, public):
        return public.server

    @pytest.fixture
    def plugin_options(self, tmp_path) -> dict[str, Any]:
        return {"cache_dir": str(tmp_path / "cache"), "timeout": 2.0}
