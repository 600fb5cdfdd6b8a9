"""``features`` against TA-Lib itself: every feature within 1e-9 relative on long series, null exactly
where TA-Lib has no value yet, and never NaN.

Input goes through the real pipeline (CSV -> files source -> features -> DuckDB) and the reference is
computed by TA-Lib from the very prices the sink stored.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import talib
from transform_helpers import candles, pipeline, run, stored, write_input

ROWS = 20_000
RELATIVE = 1e-9
CUSTOM = ["return_3", "log_return_5", "volatility_10", "atr_7", "rsi_21", "sma_50", "ema_9", "bb_upper_30",
          "bb_middle_30", "bb_lower_30", "volume_sma_5", "volume_spike_10", "trend_3", "atr_1", "rsi_2"]


def reference(name: str, data: pl.DataFrame, deviations: float) -> np.ndarray:
    """What TA-Lib (or plain numpy, for the non-TA-Lib features) says ``name`` is."""
    close, high, low, volume = (data[column].to_numpy() for column in ("close", "high", "low", "volume"))
    if name.startswith("taker_"):
        buy = data["taker_buy_volume"].to_numpy()
        return buy - (volume - buy) if name.endswith("delta") else buy / (volume - buy)
    family, n = re.fullmatch(r"([a-z_]+)_(\d+)", name).groups()
    n = int(n)
    if family.startswith("bb_"):
        upper, middle, lower = talib.BBANDS(close, n, deviations, deviations, talib.MA_Type.SMA)
        return {"bb_upper": upper, "bb_middle": middle, "bb_lower": lower}[family]
    one_bar_log_returns = np.log(talib.ROCR(close, 1))
    return {
        "return": lambda: talib.ROCP(close, n),
        "log_return": lambda: np.log(talib.ROCR(close, n)),
        "volatility": lambda: talib.STDDEV(one_bar_log_returns, n, 1) * math.sqrt(n / (n - 1)),
        "atr": lambda: talib.ATR(high, low, close, n),
        "rsi": lambda: talib.RSI(close, n),
        "sma": lambda: talib.SMA(close, n),
        "ema": lambda: talib.EMA(close, n),
        "volume_sma": lambda: talib.SMA(volume, n),
        "volume_spike": lambda: volume / talib.SMA(volume, n),
        "trend": lambda: np.sign(talib.MOM(close, n)),
    }[family]()


def assert_matches(actual: pl.Series, expected: np.ndarray, label: str) -> None:
    """Null exactly where the reference is NaN, no NaN anywhere, values within RELATIVE (exact at 0)."""
    if actual.dtype.is_float():
        assert actual.is_nan().sum() == 0, f"{label}: NaN stored"
    values = actual.cast(pl.Float64).to_numpy()
    missing = np.isnan(expected)
    null_rows = actual.is_null().to_numpy()
    assert (null_rows == missing).all(), (
        f"{label}: null at rows {np.flatnonzero(null_rows & ~missing)[:5]}, value where TA-Lib has none at "
        f"{np.flatnonzero(~null_rows & missing)[:5]}"
    )
    error = np.abs(values[~missing] - expected[~missing])
    allowed = RELATIVE * np.abs(expected[~missing])
    worst = int(np.argmax(error - allowed))
    assert (error <= allowed).all(), (
        f"{label}: {values[~missing][worst]!r} vs TA-Lib {expected[~missing][worst]!r} at row "
        f"{np.flatnonzero(~missing)[worst]}"
    )


def flat_start(frame: pl.DataFrame, bars: int) -> pl.DataFrame:
    """Make the first bars a market that does not move: TA-Lib's zero branches (RSI 0, zero band width)."""
    flat = pl.int_range(pl.len()) < bars
    price = frame["open"][0]
    return frame.with_columns(pl.when(flat).then(price).otherwise(pl.col(name)).alias(name)
                              for name in ("open", "high", "low", "close"))


def load(folder: Path, frames: dict[str, pl.DataFrame], transform: dict) -> pl.DataFrame:
    for symbol, frame in frames.items():
        write_input(folder, frame, f"{symbol}.csv")
    result = run(pipeline(folder, [transform], symbols=tuple(frames)))
    assert result.exit_code == 0, str(result)
    return stored(folder)


@pytest.fixture(scope="module")
def series() -> dict[str, pl.DataFrame]:
    """A bitcoin-priced series that starts flat, and a sub-cent token, both with taker volume."""
    return {
        "BTC": flat_start(candles(ROWS, taker=True, seed=1), 40),
        "PEPE": candles(ROWS, price=0.000012, volatility=0.004, taker=True, seed=2),
    }


def check_all(table: pl.DataFrame, names: list[str], deviations: float) -> None:
    for symbol, data in table.group_by("symbol"):
        for name in names:
            assert_matches(data[name], reference(name, data, deviations), f"{name} on {symbol[0]}")


def test_default_features_equal_talib(tmp_path: Path, series: dict[str, pl.DataFrame]) -> None:
    table = load(tmp_path, series, {"plugin": "features"})
    defaults = ["return_1", "log_return_1", "volatility_20", "volatility_50", "atr_14", "rsi_14", "sma_20",
                "ema_20", "bb_upper_20", "bb_middle_20", "bb_lower_20", "volume_sma_20", "volume_spike_20",
                "trend_20", "taker_buy_sell_delta", "taker_buy_sell_ratio"]
    added = [column for column in table.columns if column not in (*series["BTC"].columns, "source", "symbol",
                                                                  "timeframe")]
    assert added == defaults
    assert table.height == 2 * ROWS
    check_all(table, defaults, 2.0)
    btc = table.filter(pl.col("symbol") == "BTC")
    assert btc["rsi_14"][14:40].to_list() == [0.0] * 26, "a flat market has TA-Lib's RSI of 0"
    assert (btc["bb_upper_20"][19:40] == btc["bb_middle_20"][19:40]).all()


def test_configured_windows_equal_talib(tmp_path: Path, series: dict[str, pl.DataFrame]) -> None:
    table = load(tmp_path, series, {"plugin": "features", "include": CUSTOM, "bb_deviations": 1.5})
    assert [column for column in table.columns if column in CUSTOM] == CUSTOM
    assert "rsi_14" not in table.columns and "taker_buy_sell_ratio" not in table.columns
    check_all(table, CUSTOM, 1.5)


def test_trend_is_a_small_integer_and_direction_of_the_sma(tmp_path: Path) -> None:
    frame = candles(200, seed=7)
    table = load(tmp_path, {"BTC": frame}, {"plugin": "features", "include": ["trend_10", "sma_10"]})
    assert table.schema["trend_10"] == pl.Int8
    sma = table["sma_10"].to_numpy()
    direction = np.sign(np.diff(sma))[9:]
    trend = table["trend_10"].to_numpy()[10:]
    clear = np.abs(np.diff(sma))[9:] > 1e-9 * sma[10:]
    assert (direction[clear] == trend[clear]).all()


def test_taker_ratio_is_null_when_nobody_sold(tmp_path: Path) -> None:
    frame = candles(30, taker=True).with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.col("volume")).otherwise(pl.col("taker_buy_volume"))
        .alias("taker_buy_volume"))
    table = load(tmp_path, {"BTC": frame}, {"plugin": "features"})
    assert table["taker_buy_sell_ratio"][5] is None
    assert table["taker_buy_sell_delta"][5] == pytest.approx(frame["volume"][5])
    assert table["taker_buy_sell_ratio"].null_count() == 1


def test_short_history_is_all_null_never_nan_or_zero(tmp_path: Path) -> None:
    table = load(tmp_path, {"BTC": candles(10)}, {"plugin": "features"})
    for name in ("volatility_20", "atr_14", "rsi_14", "sma_20", "ema_20", "bb_upper_20", "volume_spike_20"):
        assert table[name].null_count() == 10, name
    assert table["return_1"].null_count() == 1
