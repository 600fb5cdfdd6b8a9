"""The binance, bybit and ccxt sources pass the source conformance suite against the local fakes, as a
third-party source would."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from etl.testing import SourceConformance
from etl.timeframes import DAY, HOUR, floor_ts, iso, now_ms

RECENT = floor_ts(now_ms(), "1h")  # open interest: Binance keeps 30 days only
QUICK = {"retry_base_delay": 0.01, "timeout": 2.0}


class ExchangeConformance(SourceConformance):
    """One fake exchange per class; the suite's fault injection goes to its FakeServer."""

    fake: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(scope="class")
    def exchange(self):
        if self.fake == "binance":
            from fixtures.fake_binance import FakeBinance as Fake
        else:
            from fixtures.fake_bybit import FakeBybit as Fake
        with Fake() as fake:
            yield fake

    @pytest.fixture
    def source_server(self, exchange):
        return exchange.server

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {**QUICK, **self.options}


class TestBinanceSpotOhlcv(ExchangeConformance):
    plugin, fake = "binance", "binance"
    symbols, timeframes = ("BTCUSDT", "ETHUSDT"), ("1h",)
    start, end = "2024-01-01", "2024-01-05"
    unknown_symbol = "NOPEUSDT"
    live_timeframe = "1s"

    @pytest.fixture(scope="class")
    def ws_url(self, exchange):
        from fixtures.fake_binance_ws import FakeBinanceWebsocket

        with FakeBinanceWebsocket(exchange) as ws:
            yield ws.url


class TestBinanceFunding(ExchangeConformance):
    plugin, fake, dataset = "binance", "binance", "funding"
    options: ClassVar[dict[str, Any]] = {"market": "usdm"}
    symbols = ("BTCUSDT",)
    start, end = "2024-01-01", "2024-02-01"
    unknown_symbol = "NOPEUSDT"


class TestBinanceOpenInterest(ExchangeConformance):
    plugin, fake, dataset = "binance", "binance", "open_interest"
    options: ClassVar[dict[str, Any]] = {"market": "usdm", "period": "1h"}
    symbols = ("BTCUSDT",)
    start, end = iso(RECENT - 5 * DAY), iso(RECENT - 2 * HOUR)


class TestBybitLinearOhlcv(ExchangeConformance):
    plugin, fake = "bybit", "bybit"
    options: ClassVar[dict[str, Any]] = {"market": "linear"}
    symbols, timeframes = ("BTCUSDT", "ETHUSDT"), ("15m",)
    start, end = "2024-01-01", "2024-01-20"
    unknown_symbol = "NOPEUSDT"
    live_timeframe, live_clock = "1m", 60  # minute bars close every second

    @pytest.fixture(scope="class")
    def ws_url(self, exchange):
        from fixtures.fake_bybit_ws import FakeBybitWebsocket

        with FakeBybitWebsocket(exchange) as ws:
            yield f"{ws.url}/v5/public/linear"


class TestBybitFunding(ExchangeConformance):
    plugin, fake, dataset = "bybit", "bybit", "funding"
    options: ClassVar[dict[str, Any]] = {"market": "linear"}
    symbols = ("ETHUSDT",)
    start, end = "2023-06-01", "2024-01-01"


class TestBybitOpenInterest(ExchangeConformance):
    plugin, fake, dataset = "bybit", "bybit", "open_interest"
    options: ClassVar[dict[str, Any]] = {"market": "inverse", "period": "4h"}
    symbols = ("BTCUSD",)
    start, end = "2023-06-01", "2024-01-01"


class TestCcxtOhlcv(ExchangeConformance):
    plugin, fake = "ccxt", "binance"
    options: ClassVar[dict[str, Any]] = {"exchange": "binance"}
    symbols, timeframes = ("BTCUSDT",), ("4h",)
    start, end = "2023-11-01", "2024-01-01"
    unknown_symbol = "NOPEUSDT"
