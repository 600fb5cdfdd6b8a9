"""Which trading calendar a Yahoo symbol follows, and the bars its sessions should produce.

Gap detection compares the bars stored with the bars that should exist. For an exchange that is
closed at night, at weekends and on holidays, "should exist" comes from its calendar
(exchange-calendars, maintained per exchange): a missing bar on a holiday is no gap, a missing bar
inside a session is.

The calendar is guessed from the symbol's Yahoo suffix (``SAP.DE`` -> XETR, ``600497.SS`` -> XSHG, no
suffix -> XNYS, ``EURUSD=X`` -> 24/5, ``BTC-USD`` -> 24/7), or set with the source's ``calendar``
option. Symbols with an unknown suffix, futures (``ES=F``) and unlisted indices get no calendar.

Bars are listed the way the source stores them: intraday bars at their start in UTC, aligned to the
session open (09:30 New York gives 1h bars at 09:30, 10:30, ...); daily bars at the session date at
00:00 UTC; weekly bars at the Monday of each week with a session.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from etl.timeframes import MINUTE, floor_ts, next_expr, timeframe_ms, to_ms

if TYPE_CHECKING:
    import polars as pl

NO_CALENDAR = "none"
AUTO = "auto"
# Timeframes whose bars are keyed by session date, and the most days one bar's sessions span.
SESSION_BAR_DAYS = {"1d": 1, "1w": 7, "1M": 31}

SUFFIX_CALENDARS = {
    "AS": "XAMS", "AT": "ASEX", "AX": "XASX", "BA": "XBUE", "BD": "XBUD", "BK": "XBKK", "BO": "XBOM",
    "BR": "XBRU", "CO": "XCSE", "DE": "XETR", "DU": "XDUS", "F": "XFRA", "HA": "XHAM", "HE": "XHEL",
    "HK": "XHKG", "IR": "XDUB", "IS": "XIST", "JK": "XIDX", "JO": "XJSE", "KL": "XKLS", "KQ": "XKRX",
    "KS": "XKRX", "L": "XLON", "LS": "XLIS", "MC": "XMAD", "MI": "XMIL", "MX": "XMEX", "NS": "XBOM",
    "NZ": "XNZE", "OL": "XOSL", "PA": "XPAR", "PR": "XPRA", "SA": "BVMF", "SG": "XSTU", "SI": "XSES",
    "SN": "XSGO", "SS": "XSHG", "ST": "XSTO", "SW": "XSWX", "SZ": "XSHG", "T": "XTKS", "TA": "XTAE",
    "TO": "XTSE", "TW": "XTAI", "VI": "XWBO", "WA": "XWAR",
}
INDEX_CALENDARS = {
    "^GSPC": "XNYS", "^DJI": "XNYS", "^IXIC": "XNYS", "^NDX": "XNYS", "^RUT": "XNYS", "^VIX": "XNYS",
    "^GDAXI": "XETR", "^FTSE": "XLON", "^FCHI": "XPAR", "^STOXX50E": "XETR", "^N225": "XTKS",
    "^HSI": "XHKG", "^AXJO": "XASX", "^GSPTSE": "XTSE", "^SSMI": "XSWX", "^AEX": "XAMS", "^IBEX": "XMAD",
}
FX_CALENDAR = "24/5"
ALWAYS_OPEN = "24/7"
CRYPTO_QUOTES = ("USD", "USDT", "USDC", "EUR", "GBP", "JPY", "BTC", "ETH")


def calendar_for(symbol: str) -> str | None:
    """The exchange-calendars code a Yahoo symbol trades on, or None when the symbol says nothing of it."""
    symbol = symbol.upper()
    if symbol.startswith("^"):
        return INDEX_CALENDARS.get(symbol)
    if symbol.endswith("=X"):
        return FX_CALENDAR
    if "." in symbol:
        return SUFFIX_CALENDARS.get(symbol.rsplit(".", 1)[1])
    if "-" in symbol and symbol.rsplit("-", 1)[1] in CRYPTO_QUOTES:
        return ALWAYS_OPEN
    return None if "=" in symbol else "XNYS"


def known_calendars() -> list[str]:
    import exchange_calendars

    return sorted(exchange_calendars.get_calendar_names(include_aliases=True))


def trading_bars(calendar: str, timeframe: str, start: int, end: int, now: int) -> pl.Series:
    """Bar starts (UTC) the calendar's sessions give in ``[start, end)``, closed by ``now``."""
    import polars as pl

    starts: list[int] = []
    # A session dated D can open on D-1 in UTC (Sydney); a week keyed at Monday holds sessions up to Friday,
    # a month keyed at the 1st sessions up to its 31st.
    reach = timedelta(days=SESSION_BAR_DAYS.get(timeframe, 1))
    span = _known_span(calendar, _day(start) - timedelta(days=1), _day(end) + reach)
    if span is not None:
        exchange, first, last = span
        if timeframe in SESSION_BAR_DAYS:
            days = [session.date() for session in exchange.sessions_in_range(first, last)]
            starts = sorted({floor_ts(to_ms(datetime.combine(day, time(), UTC)), timeframe) for day in days})
        else:
            index = exchange.trading_index(first, last, f"{timeframe_ms(timeframe) // MINUTE}min", intervals=False)
            starts = list(index.asi8 // 1_000_000)
    ts = pl.col("ts")
    bars = pl.DataFrame({"ts": starts}, schema={"ts": pl.Int64}).filter(
        (ts >= start) & (ts < end) & (next_expr(ts, timeframe) <= now))["ts"]
    return bars.cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")


def _known_span(code: str, first: date, last: date) -> tuple[Any, date, date] | None:
    """The calendar and the part of ``first..last`` it knows, or None when it knows none of it."""
    low, high = _bounds(code)
    first, last = max(first, low), min(last, high)
    if first > last:
        return None
    exchange = _calendar(code, max(date(first.year, 1, 1), low), min(date(last.year, 12, 31), high))
    first, last = max(first, exchange.first_session.date()), min(last, exchange.last_session.date())
    return (exchange, first, last) if first <= last else None


@functools.lru_cache(maxsize=32)
def _bounds(code: str) -> tuple[date, date]:
    """The dates a calendar can be built for (most have no limit)."""
    import exchange_calendars

    factory = type(exchange_calendars.get_calendar(code))
    low, high = factory.bound_min(), factory.bound_max()
    return (low.date() if low is not None else date.min), (high.date() if high is not None else date.max)


@functools.lru_cache(maxsize=32)
def _calendar(code: str, first: date, last: date) -> Any:
    """Calendars span whole years (within their bounds), so the windows of one run share one."""
    import exchange_calendars

    return exchange_calendars.get_calendar(code, start=first, end=last)


def _day(ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).date()
