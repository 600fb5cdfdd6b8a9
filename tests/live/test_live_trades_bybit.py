"""``etl stream`` of Bybit trades (``publicTrade``) against local fakes of its REST API and public websocket.

Bybit serves no trade history to heal from, so what ``etl stream`` stores is what the venue published while
it listened, once each, and the windows it did not listen (a dropped connection, a silent one, the process
stopped) are gaps in the ledger, listed by ``etl status --gaps``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.timeframes import iso, now_ms
from tests.live.harness import (
    SINKS,
    check_live_only_rows_and_gaps,
    recorded_gaps,
    start_stream,
    stop,
    stored,
    wait_for,
)

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def fakes() -> Iterator[tuple[Any, Any]]:
    from fixtures.fake_bybit import FakeBybit
    from fixtures.fake_bybit_ws import FakeBybitWebsocket

    with FakeBybit() as rest, FakeBybitWebsocket(rest) as ws:
        yield rest, ws


def pipeline(folder: Path, fakes: tuple[Any, Any], dataset: str, market: str = "linear", **source: Any) -> Path:
    rest, ws = fakes
    config = {"plugin": "bybit", "market": market, "dataset": dataset, "symbols": SYMBOLS,
              "start": iso(now_ms() - 10_000), "base_url": rest.url, "ws_url": f"{ws.url}/v5/public/{market}",
              "retry_base_delay": 0.01, "ws_silence": 1.5, **source}
    return write_pipeline(folder, single_pipeline(config, SINKS, name="live"))


def published_trades(ws: Any) -> pl.DataFrame:
    return pl.DataFrame(ws.published["publicTrade"], orient="row",
                        schema=["symbol", "ts", "trade_id", "price", "size", "side"])


@pytest.mark.parametrize("market", ["linear", "spot"])
def test_trades_are_what_bybit_published_and_the_disconnects_are_recorded_gaps(fakes: tuple[Any, Any],
                                                                               tmp_path: Path, market: str) -> None:
    ws = fakes[1]
    path = pipeline(tmp_path / "live", fakes, "trades", market)
    check_live_only_rows_and_gaps(tmp_path / "live", path, ws, "trades", lambda: published_trades(ws))


def test_a_restart_records_the_time_it_was_stopped_as_a_gap(fakes: tuple[Any, Any], tmp_path: Path) -> None:
    path = pipeline(tmp_path / "live", fakes, "trades")
    checkpoints = tmp_path / "live" / ".etl" / "checkpoints" / "live.json"
    process = start_stream(path)
    wait_for(checkpoints.exists, 30)
    assert stop(process)[0] == 0
    before, written = stored(tmp_path / "live", "trades"), checkpoints.stat().st_mtime_ns
    process = start_stream(path)
    wait_for(lambda: checkpoints.stat().st_mtime_ns > written, 30)  # it commits again
    code, _, _, err = stop(process)

    assert code == 0, err
    assert "the stream was stopped" in err
    last = int(before["ts"].max().timestamp() * 1000)
    assert any(start == last for start, _ in recorded_gaps(tmp_path / "live")["trades/BTCUSDT"])
    after = stored(tmp_path / "live", "trades")
    assert after.height > before.height and not after.select("symbol", "trade_id").is_duplicated().any()
    healed = run_cli("heal", str(path))
    assert healed.exit_code == 0, "nothing to ask Bybit again, and no failure"
    assert "trades/BTCUSDT" in run_cli("status", str(path), "--gaps").stdout, "the gaps stay open"


def test_a_first_start_records_the_time_before_its_first_connection_as_a_gap(fakes: tuple[Any, Any],
                                                                             tmp_path: Path) -> None:
    """Nobody heard the trades from the pipeline's ``start`` to the first connection: a gap, not silence (an
    enriched bar must not count 0 liquidations for minutes nobody listened to)."""
    begun = now_ms()
    path = pipeline(tmp_path / "live", fakes, "trades", start=iso(begun - 60_000))
    process = start_stream(path)
    wait_for((tmp_path / "live" / ".etl" / "checkpoints" / "live.json").exists, 30)  # it committed trades
    code, _, _, err = stop(process)

    assert code == 0, err
    assert "nothing listened before the stream began" in err
    for symbol in SYMBOLS:
        first = recorded_gaps(tmp_path / "live")[f"trades/{symbol}"][0]
        assert first[0] == begun - 60_000 and begun <= first[1] < now_ms()


def test_a_batch_run_of_bybit_trades_says_there_is_no_history(fakes: tuple[Any, Any], tmp_path: Path) -> None:
    result = run_cli("run", str(pipeline(tmp_path / "live", fakes, "trades")))
    assert result.exit_code == 1
    assert "bybit serves no trades history: follow it live with etl stream" in result.stdout
