"""The conformance check "a live source's window equals its batch window" fails a live source that stores a
forming bar or misses a closed one, and says so when no connection comes up; the correct Binance source
passes it (``tests/exchanges/test_exchange_conformance.py`` runs it through the suite, as a plugin author's
suite would).

The defective sources are the Binance source with its ``parse_live`` broken the way a plugin author might
break theirs, against the Binance fakes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl.config import load
from etl.plugins import registry
from etl.testing import single_pipeline, write_pipeline
from etl.testing.live_window import check_live_window, read_live_window
from etl.timeframes import iso, now_ms


@pytest.fixture
def binance_config() -> Iterator[dict[str, Any]]:
    from fixtures.fake_binance import FakeBinance
    from fixtures.fake_binance_ws import FakeBinanceWebsocket

    with FakeBinance() as rest, FakeBinanceWebsocket(rest) as ws:
        yield {"plugin": "binance", "symbols": ["BTCUSDT"], "timeframes": ["1s"], "start": iso(now_ms()),
               "base_url": rest.url, "ws_url": ws.url, "retry_base_delay": 0.01}


def build(folder: Path, config: dict[str, Any], defect: str) -> Any:
    """The Binance source with ``defect`` in its live path."""
    binance = registry().get("source", "binance")

    class Defective(binance):  # type: ignore[misc, valid-type]
        def parse_live(self, message: str | bytes, subscription: Any) -> Any:
            if defect == "forming":  # takes every update of a forming bar for a closed one
                message = str(message).replace('"x": false', '"x": true')
            parsed = list(super().parse_live(message, subscription))
            if defect == "drops":  # loses the bars of odd seconds
                parsed = [(stream, frame) for stream, frame in parsed if frame["ts"][0] // 1000 % 2 == 0]
            return parsed

    (spec,) = load(write_pipeline(folder, single_pipeline(config, [{"plugin": "duckdb", "path": "x.duckdb"}]))
                   ).pipelines.values()
    return Defective(spec.source)


@pytest.mark.parametrize(("defect", "message"), [
    # a forming bar is caught by its values, or (when its first update falls past the window) as a row too many
    ("forming", "values differ|rows that should not be there"),
    ("drops", "expected rows are missing"),
])
def test_the_check_fails_a_defective_live_path(binance_config: dict[str, Any], tmp_path: Path, defect: str,
                                               message: str) -> None:
    source = build(tmp_path, binance_config, defect)
    with pytest.raises(AssertionError, match=message) as raised:
        check_live_window(source, 4)
    assert "ohlcv/BTCUSDT/1s live [" in str(raised.value) and "versus fetch" in str(raised.value)


def test_the_check_passes_the_correct_live_path(binance_config: dict[str, Any], tmp_path: Path) -> None:
    live = check_live_window(build(tmp_path, binance_config, "none"), 3)
    assert live.end - live.start == 3000 and live.connected == 1


def test_no_connection_is_named_with_its_address(binance_config: dict[str, Any], tmp_path: Path) -> None:
    config = {**binance_config, "ws_url": "ws://127.0.0.1:9"}
    source = build(tmp_path, config, "none")
    with pytest.raises(AssertionError, match=r"binance: no connection came up in 1s \(ws://127.0.0.1:9/stream\?"):
        read_live_window(source, source.streams(), 3, 1)
