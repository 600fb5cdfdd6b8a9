"""Technical indicators as polars expressions, written to reproduce TA-Lib's numbers.

Each function takes column expressions of one stream, sorted by time, and returns an expression; no
Python runs per row. Rows without enough history are null (TA-Lib's lookback), never NaN or 0.

TA-Lib's recursive smoothings (EMA; Wilder's for ATR and RSI) start from the simple average of the
first ``n`` inputs and then apply ``y = y_prev + alpha * (x - y_prev)``. ``smoothed`` builds that as an
``ewm_mean(adjust=False)`` over a column that is null before the seed row, holds the seed average at
the seed row, and the raw input after it: ewm_mean starts at the first non-null value, so the recursion
is TA-Lib's exactly (to rounding, about 1e-15 relative).

Where a denominator is zero TA-Lib answers 0, not NaN: RSI is 0 while the market has not moved at
all (no gain, no loss), and the Bollinger deviation is 0 when the variance is not positive
(a flat window, or rounding just below zero). The same answers are given here.

This module imports polars at the top; the features transform imports it only when it runs.
"""

from __future__ import annotations

import polars as pl


def row_number() -> pl.Expr:
    """Position of each row in its stream (0 for the oldest row of the batch)."""
    return pl.int_range(pl.len())


def divide(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """``numerator / denominator``, null where the denominator is zero instead of inf or NaN."""
    return pl.when(denominator != 0).then(numerator / denominator)


def smoothed(values: pl.Expr, n: int, alpha: float, seed_row: int) -> pl.Expr:
    """TA-Lib's recursive smoothing of ``values``: at ``seed_row`` the mean of the n values ending there,
    then ``y = (1 - alpha) * y_prev + alpha * x``. Rows before ``seed_row`` are null."""
    position = row_number()
    seed = values.slice(seed_row - n + 1, n).mean()
    seeded = pl.when(position == seed_row).then(seed).when(position > seed_row).then(values)
    return seeded.ewm_mean(alpha=alpha, adjust=False)


def sma(values: pl.Expr, n: int) -> pl.Expr:
    """Simple moving average of the last n values (TA-Lib SMA)."""
    return values.rolling_mean(n)


def ema(values: pl.Expr, n: int) -> pl.Expr:
    """Exponential moving average, k = 2 / (n + 1), seeded with the SMA of the first n values (TA-Lib EMA)."""
    return smoothed(values, n, 2.0 / (n + 1), n - 1)


def true_range(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """TA-Lib TRANGE: the bar's range widened to the previous close (the same subtractions TA-Lib picks
    from). Only meaningful from the second row, which is where ``atr`` starts using it."""
    previous = close.shift(1)
    top = pl.when(previous > high).then(previous).otherwise(high)
    bottom = pl.when(previous < low).then(previous).otherwise(low)
    return top - bottom


def atr(true_ranges: pl.Expr, n: int) -> pl.Expr:
    """Average true range with Wilder's smoothing (alpha = 1/n), first value at row n (TA-Lib ATR)."""
    return smoothed(true_ranges, n, 1.0 / n, n)


def average_gain(close: pl.Expr, n: int) -> pl.Expr:
    """Wilder-smoothed upward close-to-close moves, first value at row n (RSI's numerator)."""
    return smoothed(close.diff().clip(lower_bound=0.0), n, 1.0 / n, n)


def average_loss(close: pl.Expr, n: int) -> pl.Expr:
    """Wilder-smoothed downward close-to-close moves, as positive numbers."""
    return smoothed((-close.diff()).clip(lower_bound=0.0), n, 1.0 / n, n)


def rsi(gain: pl.Expr, loss: pl.Expr) -> pl.Expr:
    """Relative strength index from the average gain and loss: 100 * gain / (gain + loss) (TA-Lib RSI)."""
    total = gain + loss
    return pl.when(total > 0).then(100.0 * gain / total).when(total.is_not_null()).then(0.0)


def bollinger_variance(close: pl.Expr, n: int) -> pl.Expr:
    """Population variance over the last n values (the basis of TA-Lib's BBANDS deviation)."""
    return close.rolling_var(n, ddof=0)


def bollinger_deviation(variance: pl.Expr) -> pl.Expr:
    """Standard deviation from ``bollinger_variance``; 0 where rounding left the variance below zero."""
    return variance.clip(lower_bound=0.0).sqrt()


def simple_return(close: pl.Expr, n: int) -> pl.Expr:
    """Return over n bars, (close - close_n) / close_n (TA-Lib ROCP)."""
    previous = close.shift(n)
    return divide(close - previous, previous)


def log_return(close: pl.Expr, n: int) -> pl.Expr:
    """Natural log of close / close_n (ln of TA-Lib ROCR); null unless both prices are positive."""
    previous = close.shift(n)
    return pl.when((close > 0) & (previous > 0)).then((close / previous).log())


def volatility(log_returns: pl.Expr, n: int) -> pl.Expr:
    """Sample standard deviation of the last n one-bar log returns (needs n + 1 closes)."""
    return log_returns.rolling_std(n, ddof=1)


def trend(close: pl.Expr, n: int) -> pl.Expr:
    """Direction of the n-bar SMA: 1 rising, -1 falling, 0 flat.

    SMA_t - SMA_(t-1) = (close_t - close_(t-n)) / n, so the sign comes straight from two prices: no
    rounding can flip it, and incremental runs agree with one-shot runs exactly.
    """
    return (close - close.shift(n)).sign().cast(pl.Int8)


def percentile_rank(values: pl.Expr, n: int) -> pl.Expr:
    """Share (0-100) of the last n values, the current one included, that are at or below the current one."""
    return values.rolling_rank(n, method="max").cast(pl.Float64) * (100.0 / n)


def change(values: pl.Expr, n: int) -> pl.Expr:
    """Difference from n rows earlier."""
    return values - values.shift(n)


def taker_delta(volume: pl.Expr, taker_buy: pl.Expr) -> pl.Expr:
    """Taker buy volume minus taker sell volume (sell = volume - buy)."""
    return taker_buy - (volume - taker_buy)


def taker_ratio(volume: pl.Expr, taker_buy: pl.Expr) -> pl.Expr:
    """Taker buy volume over taker sell volume; null when nobody sold as taker."""
    return divide(taker_buy, volume - taker_buy)


def zscore(values: pl.Expr, n: int) -> pl.Expr:
    """(value - mean) / sample std over the last n values; null where the window is flat: a std at most 1e-12 of
    the mean is rounding, which would otherwise give huge values that differ between runs."""
    mean, deviation = values.rolling_mean(n), values.rolling_std(n, ddof=1)
    return pl.when(deviation > 1e-12 * mean.abs()).then((values - mean) / deviation)


def market_structure(high: pl.Expr, low: pl.Expr, n: int) -> pl.Expr:
    """1 when the last n bars made a higher high and a higher low than the n bars before, -1 for a lower high and
    a lower low, 0 otherwise; null until 2n bars. Maxima and minima are exact, so runs always agree."""
    highest, lowest = high.rolling_max(n), low.rolling_min(n)
    before_high, before_low = highest.shift(n), lowest.shift(n)
    known = before_high.is_not_null() & before_low.is_not_null() & highest.is_not_null() & lowest.is_not_null()
    bullish, bearish = (highest > before_high) & (lowest > before_low), (highest < before_high) & (lowest < before_low)
    return pl.when(~known).then(None).when(bullish).then(1).when(bearish).then(-1).otherwise(0).cast(pl.Int8)
