"""Timeframe names and the arithmetic of interval boundaries, in UTC milliseconds.

Weeks start on Monday (1970-01-05 was one), days at 00:00 UTC, months on the 1st at 00:00 UTC; every other
timeframe divides a day. Months are the one timeframe of varying length, so code that steps from bar to bar
goes through ``next_bar``, ``previous_bar`` and ``bar_number`` rather than adding ``timeframe_ms``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
_MONDAY_OFFSET = 4 * DAY

TIMEFRAMES: dict[str, int] = {
    "1s": 1000,
    "1m": MINUTE,
    "2m": 2 * MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "90m": 90 * MINUTE,
    "1h": HOUR,
    "2h": 2 * HOUR,
    "4h": 4 * HOUR,
    "6h": 6 * HOUR,
    "8h": 8 * HOUR,
    "12h": 12 * HOUR,
    "1d": DAY,
    "3d": 3 * DAY,
    "1w": WEEK,
    "1M": 31 * DAY,
}

# Timeframes counted in calendar months; TIMEFRAMES holds their longest length (31 days).
MONTHS = {"1M": 1}


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar of ``timeframe`` in milliseconds (the longest one, for calendar months)."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAMES)}") from None


def _offset(timeframe: str) -> int:
    return _MONDAY_OFFSET if timeframe == "1w" else 0


def _month_number(ts_ms: int) -> int:
    moment = from_ms(ts_ms)
    return moment.year * 12 + moment.month - 1


def _month_start(number: int) -> int:
    return to_ms(datetime(number // 12, number % 12 + 1, 1, tzinfo=UTC))


def bar_number(ts_ms: int, timeframe: str) -> int:
    """Position on the timeframe's grid of the bar containing ``ts_ms``: consecutive bars differ by one."""
    if timeframe in MONTHS:
        return _month_number(ts_ms) // MONTHS[timeframe]
    return (ts_ms - _offset(timeframe)) // timeframe_ms(timeframe)


def bar_start(number: int, timeframe: str) -> int:
    """Start of the bar at position ``number`` of ``bar_number``."""
    if timeframe in MONTHS:
        return _month_start(number * MONTHS[timeframe])
    return number * timeframe_ms(timeframe) + _offset(timeframe)


def floor_ts(ts_ms: int, timeframe: str) -> int:
    """Start of the bar of ``timeframe`` that contains ``ts_ms``."""
    return bar_start(bar_number(ts_ms, timeframe), timeframe)


def ceil_ts(ts_ms: int, timeframe: str) -> int:
    """First bar start of ``timeframe`` at or after ``ts_ms``."""
    floor = floor_ts(ts_ms, timeframe)
    return floor if floor == ts_ms else next_bar(floor, timeframe)


def next_bar(ts_ms: int, timeframe: str) -> int:
    """Start of the bar after the one starting at ``ts_ms``.

    Bars a source keeps off the grid (Yahoo's hourly bars start at :30 in New York) keep their offset.
    """
    return _shift(ts_ms, timeframe, 1)


def previous_bar(ts_ms: int, timeframe: str) -> int:
    """Start of the bar before the one starting at ``ts_ms``."""
    return _shift(ts_ms, timeframe, -1)


def _shift(ts_ms: int, timeframe: str, bars: int) -> int:
    if timeframe in MONTHS:
        return bar_start(bar_number(ts_ms, timeframe) + bars, timeframe)
    return ts_ms + bars * timeframe_ms(timeframe)


def bar_starts(start: int, end: int, timeframe: str) -> list[int]:
    """Every bar start of ``timeframe`` in ``[start, end)``."""
    first, last = bar_number(ceil_ts(start, timeframe), timeframe), bar_number(end - 1, timeframe)
    return [bar_start(number, timeframe) for number in range(first, last + 1)]


def floor_expr(ts_ms: pl.Expr, timeframe: str) -> pl.Expr:
    """``floor_ts`` over a column of epoch milliseconds."""
    import polars as pl

    if timeframe in MONTHS:
        return pl.from_epoch(ts_ms, "ms").dt.truncate(f"{MONTHS[timeframe]}mo").dt.epoch("ms")
    step, offset = timeframe_ms(timeframe), _offset(timeframe)
    return (ts_ms - offset) // step * step + offset


def next_expr(ts_ms: pl.Expr, timeframe: str) -> pl.Expr:
    """``next_bar`` over a column of epoch milliseconds."""
    import polars as pl

    if timeframe in MONTHS:
        return pl.from_epoch(floor_expr(ts_ms, timeframe), "ms").dt.offset_by(f"{MONTHS[timeframe]}mo").dt.epoch("ms")
    return ts_ms + timeframe_ms(timeframe)


def number_expr(ts_ms: pl.Expr, timeframe: str) -> pl.Expr:
    """``bar_number`` over a column of epoch milliseconds."""
    import polars as pl

    if timeframe in MONTHS:
        moment = pl.from_epoch(ts_ms, "ms")
        return (moment.dt.year().cast(pl.Int64) * 12 + moment.dt.month().cast(pl.Int64) - 1) // MONTHS[timeframe]
    return (ts_ms - _offset(timeframe)) // timeframe_ms(timeframe)


def now_ms() -> int:
    """Now, epoch ms: the one clock the core and the sources read (heal bounds, closed bars, windows).

    ``ETL_CLOCK=<speed>@<origin epoch ms>`` makes it run ``speed`` times faster than the wall clock from
    ``origin`` on. Tests of minute bars set it for ``etl stream`` and for the fake venues, which read this
    clock too: a minute closes every second, and every clock of the run still agrees with the venue's.
    """
    wall = int(datetime.now(UTC).timestamp() * 1000)
    setting = os.environ.get("ETL_CLOCK")
    if not setting:
        return wall
    speed, origin = _clock(setting)
    return origin + int((wall - origin) * speed)


@cache
def _clock(setting: str) -> tuple[float, int]:
    speed, _, origin = setting.partition("@")
    return float(speed), int(origin)


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def from_ms(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


def ts_literal(ts_ms: int) -> pl.Expr:
    """A UTC timestamp for polars comparisons. From epoch ms it costs 7 us; polars takes about 200 us to
    convert a timezone-aware ``datetime``, which adds up over thousands of batches."""
    import polars as pl

    return pl.lit(ts_ms).cast(pl.Datetime("ms", "UTC"))


def iso(ts_ms: int) -> str:
    """Readable UTC form used in checkpoints, logs and messages."""
    text = from_ms(ts_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return text.replace(".000Z", "Z")


_DURATION_UNITS = {"s": 1000, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK}


def parse_duration(text: str) -> int:
    """Milliseconds of a duration such as ``90s``, ``15m``, ``2h``, ``1d`` or ``1w``; ValueError otherwise."""
    number, unit = text.strip()[:-1], text.strip()[-1:]
    if unit not in _DURATION_UNITS or not number.isdigit() or not int(number):
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 2h, 1d or 1w")
    return int(number) * _DURATION_UNITS[unit]


def parse_time(text: str) -> int:
    """Parse an ISO date or datetime (UTC unless an offset is given) to milliseconds."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return to_ms(value)
