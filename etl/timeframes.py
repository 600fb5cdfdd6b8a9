"""Timeframe names and the arithmetic of interval boundaries, in UTC milliseconds.

Weeks start on Monday (1970-01-05 was one), days at 00:00 UTC; every other timeframe divides a day.
"""

from __future__ import annotations

from datetime import UTC, datetime

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
_MONDAY_OFFSET = 4 * DAY

TIMEFRAMES: dict[str, int] = {
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
}


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar of ``timeframe`` in milliseconds."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAMES)}") from None


def _offset(timeframe: str) -> int:
    return _MONDAY_OFFSET if timeframe == "1w" else 0


def floor_ts(ts_ms: int, timeframe: str) -> int:
    """Start of the bar of ``timeframe`` that contains ``ts_ms``."""
    step, offset = timeframe_ms(timeframe), _offset(timeframe)
    return (ts_ms - offset) // step * step + offset


def ceil_ts(ts_ms: int, timeframe: str) -> int:
    """First bar start of ``timeframe`` at or after ``ts_ms``."""
    floor = floor_ts(ts_ms, timeframe)
    return floor if floor == ts_ms else floor + timeframe_ms(timeframe)


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def from_ms(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


def iso(ts_ms: int) -> str:
    """Readable UTC form used in checkpoints, logs and messages."""
    text = from_ms(ts_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return text.replace(".000Z", "Z")


def parse_time(text: str) -> int:
    """Parse an ISO date or datetime (UTC unless an offset is given) to milliseconds."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return to_ms(value)
