"""``etl stream`` of Hyperliquid trades (the ``trades`` subscription) against local fakes of its info API and
websocket. Hyperliquid serves no trade history: what is stored is what it published while ``etl stream``
listened (the 30 recent trades each subscription starts with included), once each, and the windows it did not
listen are gaps in the ledger, listed by ``etl status --gaps``."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.timeframes import iso, now_ms
from tests.live.harness import SINKS, check_live_only_rows_and_gaps

SYMBOLS = ["BTC", "ETH"]


def pipeline(folder: Path, rest_url: str, ws_url: str) -> Path:
    config = {"plugin": "hyperliquid", "dataset": "trades", "symbols": SYMBOLS, "start": iso(now_ms() - 10_000),
              "base_url": rest_url, "ws_url": f"{ws_url}/ws", "ws_silence": 1.5}
    return write_pipeline(folder, single_pipeline(config, SINKS, name="live"))


def test_trades_are_what_hyperliquid_published_and_the_disconnects_are_recorded_gaps(tmp_path: Path) -> None:
    from fixtures.fake_hyperliquid import FakeHyperliquid
    from fixtures.fake_hyperliquid_ws import FakeHyperliquidWebsocket

    with FakeHyperliquid() as rest, FakeHyperliquidWebsocket(rest) as ws:
        path = pipeline(tmp_path / "live", rest.url, ws.url)
        check_live_only_rows_and_gaps(
            tmp_path / "live", path, ws, "trades",
            lambda: pl.DataFrame(ws.published, orient="row",
                                 schema=["symbol", "ts", "trade_id", "price", "size", "side"]).unique())


def test_a_batch_run_of_hyperliquid_trades_says_there_is_no_history(tmp_path: Path) -> None:
    from fixtures.fake_hyperliquid import FakeHyperliquid

    with FakeHyperliquid() as rest:
        result = run_cli("run", str(pipeline(tmp_path / "live", rest.url, "ws://127.0.0.1:9")))
    assert result.exit_code == 1
    assert "hyperliquid serves no trades history: follow it live with etl stream" in result.stdout
