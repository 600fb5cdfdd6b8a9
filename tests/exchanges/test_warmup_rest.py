"""Warm-up by rows through a REST source: the binance source pages backwards until it has the rows the
features need, so a 1m series with missing minutes stores the same features over ten runs as in one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.testing.checks import check_same_values
from etl.timeframes import MINUTE, iso, parse_time

START = parse_time("2024-03-01")
BARS = 3_000
FEATURES = [{"plugin": "features", "include": ["rsi_14", "atr_14", "sma_20", "ema_20", "bb_upper_20",
                                               "volatility_20", "taker_buy_sell_ratio"]}]


def missing_minutes() -> set[int]:
    """Scattered minutes, and before each 300-bar cut a 248-minute hole ending two bars before it."""
    missing = {START + minute * MINUTE for minute in range(-600, BARS) if (minute * 7919) % 97 < 3}
    for cut in range(600, BARS, 300):
        missing.update(START + minute * MINUTE for minute in range(cut - 250, cut - 2))
    return missing


def write(folder: Path, binance: Any, fast: dict[str, Any], end: int) -> Path:
    source = {"plugin": "binance", "symbols": ["BTCUSDT"], "timeframes": ["1m"], "start": iso(START),
              "end": iso(end), "base_url": binance.url, **fast}
    sinks = [{"plugin": "duckdb", "path": "market.duckdb"}]
    return write_pipeline(folder, single_pipeline(source, sinks, FEATURES, name="market"))


def stored(folder: Path) -> pl.DataFrame:
    with duckdb.connect(str(folder / "market.duckdb"), read_only=True) as connection:
        return connection.sql("SELECT * FROM ohlcv ORDER BY ts").pl()


def test_ten_runs_over_missing_minutes_equal_one_run_and_a_backfill(binance, fast, tmp_path: Path) -> None:
    binance.missing_bars = missing_minutes()
    end = START + BARS * MINUTE
    assert run_cli("run", str(write(tmp_path / "whole", binance, fast, end))).exit_code == 0
    whole = stored(tmp_path / "whole")
    assert whole.height == BARS - len([ts for ts in binance.missing_bars if START <= ts < end])
    assert whole["sma_20"].null_count() == 0, "the first run's warm-up reaches back before its start"

    folder = tmp_path / "steps"
    for cut in range(300, BARS + 1, 300):
        result = run_cli("run", str(write(folder, binance, fast, START + cut * MINUTE)))
        assert result.exit_code == 0, str(result)
    worst = check_same_values(stored(folder), whole, "ohlcv/BTCUSDT/1m")
    assert worst <= 1e-12

    lower, upper = START + 1_250 * MINUTE, START + 2_450 * MINUTE
    path = write(tmp_path / "middle", binance, fast, end)
    result = run_cli("backfill", str(path), "--pipeline", "market", "--start", iso(lower), "--end", iso(upper))
    assert result.exit_code == 0, str(result)
    check_same_values(stored(tmp_path / "middle"), whole.filter(pl.col("ts").dt.epoch("ms").is_between(
        lower, upper, "left")), "ohlcv/BTCUSDT/1m")


def test_warmup_pages_back_only_as_far_as_the_series_goes(binance, fast, tmp_path: Path) -> None:
    """A symbol listed 100 minutes before the window: paging backwards stops at the listing (an empty window
    a month long), and the first features are null exactly where one run over the whole series has them null."""
    listed = START - 100 * MINUTE
    binance.missing_bars = set(range(START - 90 * 86_400_000, listed, MINUTE))
    assert run_cli("run", str(write(tmp_path, binance, fast, START + 60 * MINUTE))).exit_code == 0
    rows = stored(tmp_path)
    assert rows.height == 60 and rows["rsi_14"].null_count() == 0 and rows["sma_20"].null_count() == 0
    starts = sorted(int(request.query["startTime"]) for request in binance.requests_to("/api/v3/klines"))
    assert starts[0] < listed - 20 * 86_400_000, "paged back through a long empty span before giving up"
    assert len(starts) < 12
