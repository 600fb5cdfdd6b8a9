"""Both Hyperliquid sources pass the source conformance suite, exactly as a third-party source would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from etl.testing import FakeServer, SourceConformance
from etl.timeframes import HOUR, floor_ts, iso, now_ms
from fixtures.fake_hyperliquid import FakeHyperliquid

RECENT = floor_ts(now_ms(), "1h") - 3 * 24 * HOUR


class TestHyperliquidCandles(SourceConformance):
    plugin = "hyperliquid"
    symbols = ("ETH", "PURR/USDC")
    timeframes = ("1h",)
    start, end = iso(RECENT), iso(RECENT + 48 * HOUR)
    unknown_symbol = "NOPE"
    live_timeframe, live_clock = "1m", 60  # minute candles close every second

    @pytest.fixture
    def venue(self) -> Iterator[FakeHyperliquid]:
        with FakeHyperliquid() as fake:
            yield fake

    @pytest.fixture
    def source_server(self, venue: FakeHyperliquid) -> FakeServer:
        return venue.server

    @pytest.fixture
    def ws_url(self, venue: FakeHyperliquid) -> Iterator[str]:
        from fixtures.fake_hyperliquid_ws import FakeHyperliquidWebsocket

        with FakeHyperliquidWebsocket(venue) as ws:
            yield f"{ws.url}/ws"


class TestHyperliquidFunding(TestHyperliquidCandles):
    dataset = "funding"
    symbols = ("BTC", "ETH")


class TestHyperliquidArchiveL2Top(SourceConformance):
    plugin = "hyperliquid_archive"
    dataset = "l2_top"
    symbols = ("ETH", "BTC")
    start, end = "2023-06-01T03:00:00Z", "2023-06-01T09:00:00Z"

    @pytest.fixture
    def plugin_options(self, archive_source: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
                       ) -> dict[str, Any]:
        """The seeded day, through one cache for the whole suite: its reads need not download again."""
        cache = tmp_path_factory.getbasetemp() / "hyperliquid-conformance-cache"
        options = {key: value for key, value in archive_source.items() if key != "plugin"}
        return {**options, "cache_dir": str(cache)}


class TestHyperliquidArchiveMidCandles(TestHyperliquidArchiveL2Top):
    dataset = "ohlcv"
    timeframes = ("15m",)


class TestHyperliquidArchiveFunding(TestHyperliquidArchiveL2Top):
    dataset = "funding"
    start, end = "2023-06-01T00:00:00Z", "2023-06-04T00:00:00Z"
