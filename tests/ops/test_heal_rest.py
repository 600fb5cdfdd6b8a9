"""``etl heal`` against the Binance REST fake: bars served late are stored, and the features of the bars after
them recomputed, as one run over the filled series stores them; bars the venue lacks for good are confirmed and
never asked for again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.testing.checks import check_same_values
from etl.timeframes import MINUTE, iso, parse_time

START = parse_time("2024-03-01")
BARS = 300
LATE = {START + minute * MINUTE for minute in (50, 51, 52, 200)}
NEVER = {START + minute * MINUTE for minute in (100, 101, 102, 103, 104, 250)}
FEATURES = [{"plugin": "features", "include": ["sma_20", "ema_20"]}]


def write(folder: Path, binance: Any, fast: dict[str, Any]) -> Path:
    source = {"plugin": "binance", "symbols": ["BTCUSDT"], "timeframes": ["1m"], "start": iso(START),
              "end": iso(START + BARS * MINUTE), "base_url": binance.url, **fast}
    sinks = [{"plugin": "duckdb", "path": "market.duckdb"}]
    return write_pipeline(folder, single_pipeline(source, sinks, FEATURES, name="market"))


def stored(folder: Path) -> pl.DataFrame:
    with duckdb.connect(str(folder / "market.duckdb"), read_only=True) as connection:
        return connection.sql("SELECT * FROM ohlcv ORDER BY ts").pl()


def test_heal_stores_late_bars_and_confirms_missing_ones(binance, fast, tmp_path: Path) -> None:
    binance.missing_bars = LATE | NEVER
    path = write(tmp_path / "healed", binance, fast)
    assert run_cli("run", str(path)).summary.endswith(", gaps: 4, missing bars: 10")

    binance.missing_bars = set(NEVER)
    healed = run_cli("heal", str(path))
    assert healed.exit_code == 0, str(healed)
    assert healed.summary.endswith(", gaps: 2, gaps confirmed: 2, gaps filled: 2, missing bars: 6")
    assert stored(tmp_path / "healed").height == BARS - len(NEVER)

    assert run_cli("run", str(write(tmp_path / "whole", binance, fast))).exit_code == 0
    check_same_values(stored(tmp_path / "healed"), stored(tmp_path / "whole"), "ohlcv/BTCUSDT/1m")

    asked = len(binance.requests_to("/api/v3/klines"))
    assert run_cli("heal", str(path)).stdout == "No open gaps.\n"
    assert len(binance.requests_to("/api/v3/klines")) == asked, "confirmed gaps are not fetched again"
