"""Yahoo's bar intervals under the project's timeframe names, with how far back and how much at once.

Yahoo keeps intraday history for a limited time (1m: 30 days, 2m to 90m: 60 days, 1h: 730 days) and
answers a 1m request spanning more than 7 days with an error. A window reaching further back is
clamped with a warning (the older part does not exist at Yahoo, so failing would only block the rest),
and long windows are split into requests Yahoo accepts.

Daily, weekly and monthly bars are keyed by the exchange's session date at 00:00 UTC, but Yahoo stamps them at
the session open in UTC, which for Asia-Pacific exchanges falls on the previous UTC day. Those requests
are padded by one bar on each side so no session whose open precedes its date in UTC is missed.
"""

from __future__ import annotations

from dataclasses import dataclass

from etl.timeframes import DAY, HOUR, MINUTE, WEEK, ceil_ts, iso, timeframe_ms

# Yahoo counts its history limits from its own clock; starting an hour later avoids a refusal at the edge.
HISTORY_MARGIN_MS = HOUR


@dataclass(frozen=True)
class Interval:
    """One timeframe as Yahoo serves it."""

    timeframe: str
    yahoo: str
    bar_ms: int
    history_days: int | None
    request_days: int
    session_keyed: bool = False

    @property
    def pad_ms(self) -> int:
        """How much more to ask for on each side so every bar keyed inside the window arrives."""
        return self.bar_ms if self.session_keyed else 0


INTERVALS: dict[str, Interval] = {
    interval.timeframe: interval
    for interval in (
        Interval("1m", "1m", MINUTE, 30, 7),
        Interval("2m", "2m", 2 * MINUTE, 60, 60),
        Interval("5m", "5m", 5 * MINUTE, 60, 60),
        Interval("15m", "15m", 15 * MINUTE, 60, 60),
        Interval("30m", "30m", 30 * MINUTE, 60, 60),
        Interval("90m", "90m", 90 * MINUTE, 60, 60),
        Interval("1h", "60m", HOUR, 730, 730),
        Interval("1d", "1d", DAY, None, 3650, session_keyed=True),
        Interval("1w", "1wk", WEEK, None, 36500, session_keyed=True),
        Interval("1M", "1mo", timeframe_ms("1M"), None, 36500, session_keyed=True),
    )
}

# Corporate actions come with daily bars; one request covers ten years of them.
ACTIONS_INTERVAL = INTERVALS["1d"]


def clamp_start(interval: Interval, start: int, now: int) -> tuple[int, str | None]:
    """The earliest start Yahoo can serve, and a note saying why when ``start`` had to move."""
    if interval.history_days is None:
        return start, None
    earliest = ceil_ts(now - interval.history_days * DAY + HISTORY_MARGIN_MS, "1m")
    if start >= earliest:
        return start, None
    note = (f"Yahoo keeps {interval.timeframe} bars for the last {interval.history_days} days only; "
            f"window start moved from {iso(start)} to {iso(earliest)}")
    return earliest, note


def request_windows(interval: Interval, start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into pieces no longer than one request may cover, in time order."""
    step = interval.request_days * DAY
    return [(piece, min(piece + step, end)) for piece in range(start, end, step)]
