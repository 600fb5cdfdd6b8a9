"""The feature names the ``features`` transform understands, the data each needs, and its warm-up.

Names are ``<family>_<N>`` (``rsi_14``, ``bb_upper_50``) or fixed (``taker_buy_sell_delta``). This
module only parses and counts; it imports nothing heavy, because option checks run while
``etl validate`` reads the pipeline file.

Warm-up: a feature over a window of N rows is exact with N - 1 (or N) rows of history. Recursive
smoothings (EMA, Wilder's ATR and RSI) remember their whole past: their value after k rows of history
differs from the one-shot value by at most ``(1 - alpha) ** k`` times the seed's error. The warm-up
takes k with ``(1 - alpha) ** k <= 1e-13``: ten times below the 1e-12 that incremental runs are
allowed to drift, so a few rows that validate or dedup remove from the warm-up do not matter.
For ``rsi_14`` that is 418 rows, for ``ema_20`` 319.

Features of enriched bars (the ``enrich`` transform puts funding, open interest, positioning and liquidations
on OHLCV bars, ``ENRICH`` lists its columns) count their windows in bars:

- ``funding_rate_percentile_N``: share (0-100) of the last N rows whose funding rate is at or below the current
  one; on bars, the rate in force at each of the last N bars.
- ``open_interest_change_N``, ``open_interest_change_pct_N``: open interest minus (relative to) N rows earlier.
- ``liquidation_intensity``: size liquidated in the bar (both sides) over the bar's volume; null without volume,
  and where nobody listened to the whole bar (its liquidation columns are null: ``enrich``).
- ``long_short_ratio_change_N``: the long/short account ratio minus its value N rows earlier.
- ``long_short_ratio_zscore_N``: (ratio - mean) / sample std over the last N rows, the current one included;
  null until N rows, and where the window is flat (std at most 1e-12 of the mean, where rounding decides).
- ``market_structure_N``: 1 (bullish: higher high and higher low), -1 (bearish: lower high and lower low) or
  0 (range: anything else) comparing the last N bars with the N bars before them: the highest high of bars
  t-N+1..t against that of t-2N+1..t-N, and the lowest low likewise. Strictly higher (lower) counts; a tie is
  range. Null until 2N bars, and where either window holds a null high or low.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

SEED_RESIDUAL = 1e-13
MAX_WINDOW = 100_000


def decay_rows(alpha: float) -> int:
    """Rows after which a recursive smoothing has forgotten its seed to SEED_RESIDUAL."""
    if alpha >= 1:
        return 0
    return math.ceil(math.log(SEED_RESIDUAL) / math.log(1 - alpha))


@dataclass(frozen=True)
class Family:
    """A kind of feature: the dataset and columns it reads, the smallest window, and its warm-up rows."""

    prefix: str
    datasets: tuple[str, ...]
    columns: tuple[str, ...]
    history: Callable[[int], int]
    min_window: int = 2
    windowed: bool = True

    @property
    def pattern(self) -> str:
        return f"{self.prefix}_N" if self.windowed else self.prefix


_BARS = ("ohlcv",)
_POSITIONING = ("positioning", "ohlcv")
_OHLC = ("high", "low", "close")
_TAKER = ("volume", "taker_buy_volume")
_FAMILIES = (
    Family("return", _BARS, ("close",), lambda n: n, min_window=1),
    Family("log_return", _BARS, ("close",), lambda n: n, min_window=1),
    Family("volatility", _BARS, ("close",), lambda n: n),
    Family("atr", _BARS, _OHLC, lambda n: n + decay_rows(1 / n), min_window=1),
    Family("rsi", _BARS, ("close",), lambda n: n + decay_rows(1 / n)),
    Family("sma", _BARS, ("close",), lambda n: n - 1),
    Family("ema", _BARS, ("close",), lambda n: n - 1 + decay_rows(2 / (n + 1))),
    Family("bb_upper", _BARS, ("close",), lambda n: n - 1),
    Family("bb_middle", _BARS, ("close",), lambda n: n - 1),
    Family("bb_lower", _BARS, ("close",), lambda n: n - 1),
    Family("volume_sma", _BARS, ("volume",), lambda n: n - 1),
    Family("volume_spike", _BARS, ("volume",), lambda n: n - 1),
    Family("trend", _BARS, ("close",), lambda n: n, min_window=1),
    Family("taker_buy_sell_delta", _BARS, _TAKER, lambda n: 0, windowed=False),
    Family("taker_buy_sell_ratio", _BARS, _TAKER, lambda n: 0, windowed=False),
    Family("funding_rate_percentile", ("funding", "ohlcv"), ("funding_rate",), lambda n: n - 1),
    Family("open_interest_change", ("open_interest", "ohlcv"), ("open_interest",), lambda n: n, min_window=1),
    Family("open_interest_change_pct", ("open_interest", "ohlcv"), ("open_interest",), lambda n: n, min_window=1),
    Family("liquidation_intensity", _BARS, ("volume", "liquidation_buy_size", "liquidation_sell_size"), lambda n: 0,
           windowed=False),
    Family("long_short_ratio_change", _POSITIONING, ("long_short_ratio",), lambda n: n, min_window=1),
    Family("long_short_ratio_zscore", _POSITIONING, ("long_short_ratio",), lambda n: n - 1),
    Family("market_structure", _BARS, ("high", "low"), lambda n: 2 * n - 1, min_window=1),
)
FAMILIES = {family.prefix: family for family in _FAMILIES}
TAKER_FEATURES = ("taker_buy_sell_delta", "taker_buy_sell_ratio")

DEFAULTS = {
    "ohlcv": (
        "return_1", "log_return_1", "volatility_20", "volatility_50", "atr_14", "rsi_14", "sma_20", "ema_20",
        "bb_upper_20", "bb_middle_20", "bb_lower_20", "volume_sma_20", "volume_spike_20", "trend_20",
    ),
    "funding": ("funding_rate_percentile_90",),
    "open_interest": ("open_interest_change_1", "open_interest_change_pct_1"),
    "positioning": ("long_short_ratio_change_1", "long_short_ratio_zscore_20"),
}

# The columns the ``enrich`` transform brings onto bars from each dataset (besides the dataset's stored extras).
ENRICH = {
    "funding": ("funding_rate",),
    "open_interest": ("open_interest",),
    "positioning": ("long_short_ratio", "long_account", "short_account"),
    "liquidations": ("liquidation_buy_size", "liquidation_buy_notional", "liquidation_sell_size",
                     "liquidation_sell_notional"),
}

_NAME = re.compile(r"(?P<prefix>[a-z_]+?)_(?P<window>[0-9]+)")


@dataclass(frozen=True)
class Feature:
    """One output column: its name, its family and its window (None for fixed names)."""

    name: str
    family: Family
    window: int | None

    @property
    def history(self) -> int:
        return self.family.history(self.window or 0)


def parse(name: str) -> Feature:
    """The feature called ``name``; ValueError naming the valid patterns otherwise."""
    if name in FAMILIES and not FAMILIES[name].windowed:
        return Feature(name, FAMILIES[name], None)
    match = _NAME.fullmatch(name)
    family = FAMILIES.get(match["prefix"]) if match else None
    if match is None or family is None or not family.windowed:
        known = ", ".join(family.pattern for family in _FAMILIES)
        raise ValueError(f"unknown feature {name!r}; known: {known}")
    window = int(match["window"])
    if not family.min_window <= window <= MAX_WINDOW:
        raise ValueError(f"{name}: the window must be between {family.min_window} and {MAX_WINDOW}")
    return Feature(name, family, window)


def parse_include(names: list[str] | None) -> list[Feature] | None:
    """Check an ``include`` option: known names, no repeats. Any mix may apply to bars (enriched bars hold funding,
    open interest and positioning); a run checks each name against its stream's dataset."""
    if names is None:
        return None
    if not names:
        raise ValueError("name at least one feature, or leave 'include' out for the defaults")
    features = [parse(name) for name in names]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{repeated[0]!r} is listed twice")
    return features


def defaults(dataset: str, numeric_columns: list[str] | tuple[str, ...]) -> list[Feature]:
    """The default features of a dataset; the taker features when the batch has taker volume."""
    names = list(DEFAULTS.get(dataset, ()))
    if dataset == "ohlcv" and "taker_buy_volume" in numeric_columns:
        names.extend(TAKER_FEATURES)
    return [parse(name) for name in names]
