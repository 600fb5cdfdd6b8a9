"""Fixtures the live tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl.testing import single_pipeline, write_pipeline
from etl.timeframes import iso
from tests.live.harness import FEATURES, SINKS, Venue

BINANCE_SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def binance_venue() -> Iterator[Venue]:
    """Binance's REST and websocket fakes, and pipelines "live" of their 1-second klines with features."""
    from fixtures.fake_binance import FakeBinance
    from fixtures.fake_binance_ws import FakeBinanceWebsocket

    with FakeBinance() as rest, FakeBinanceWebsocket(rest) as ws:

        def pipeline(folder: Path, start: int, **source: Any) -> Path:
            config = {"plugin": "binance", "symbols": BINANCE_SYMBOLS, "timeframes": ["1s"], "start": iso(start),
                      "base_url": rest.url, "ws_url": ws.url, "retry_base_delay": 0.01, **source}
            return write_pipeline(folder, single_pipeline(config, SINKS, FEATURES, name="live"))

        yield Venue(rest, ws, pipeline, BINANCE_SYMBOLS, 1000)
