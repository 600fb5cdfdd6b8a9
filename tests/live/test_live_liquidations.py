"""``etl stream`` of liquidations: Binance USD-M ``<symbol>@forceOrder`` and Bybit ``allLiquidation.<symbol>``,
against local fakes. No venue serves their history: what is stored is what the venue published while
``etl stream`` listened, once each, and the windows it did not listen are gaps in the ledger."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.timeframes import iso, now_ms
from tests.live.harness import SINKS, check_live_only_rows_and_gaps

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
COLUMNS = ["symbol", "ts", "side", "price", "size"]


def pipeline(folder: Path, **source: object) -> Path:
    config = {"dataset": "liquidations", "symbols": SYMBOLS, "start": iso(now_ms() - 10_000),
              "retry_base_delay": 0.01, "ws_silence": 1.5, **source}
    return write_pipeline(folder, single_pipeline(config, SINKS, name="live"))


def test_binance_liquidations_are_what_it_published_and_the_disconnects_are_recorded_gaps(tmp_path: Path) -> None:
    from fixtures.fake_binance import FakeBinance
    from fixtures.fake_binance_ws import FakeBinanceWebsocket

    with FakeBinance() as rest, FakeBinanceWebsocket(rest) as ws:
        path = pipeline(tmp_path / "live", plugin="binance", market="usdm", base_url=rest.url,
                        ws_url=f"{ws.url}/market")
        check_live_only_rows_and_gaps(tmp_path / "live", path, ws, "liquidations",
                                      lambda: pl.DataFrame(ws.published, orient="row", schema=COLUMNS))


def test_bybit_liquidations_are_what_it_published_and_the_disconnects_are_recorded_gaps(tmp_path: Path) -> None:
    from fixtures.fake_bybit import FakeBybit
    from fixtures.fake_bybit_ws import FakeBybitWebsocket

    with FakeBybit() as rest, FakeBybitWebsocket(rest) as ws:
        path = pipeline(tmp_path / "live", plugin="bybit", market="linear", base_url=rest.url,
                        ws_url=f"{ws.url}/v5/public/linear")
        check_live_only_rows_and_gaps(
            tmp_path / "live", path, ws, "liquidations",
            lambda: pl.DataFrame(ws.published["allLiquidation"], orient="row", schema=COLUMNS))


def test_liquidations_need_a_derivatives_market(tmp_path: Path) -> None:
    result = run_cli("validate", str(pipeline(tmp_path, plugin="binance", market="spot")))
    assert result.exit_code != 0
    assert "binance dataset 'liquidations' needs a perpetual-futures market: set market to 'usdm'" in result.output
