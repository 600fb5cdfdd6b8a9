"""Yahoo chart results -> bars and corporate actions, keyed the way the project's grid expects.

A chart result carries unix-second timestamps and parallel arrays::

    {"meta": {"exchangeTimezoneName": "America/New_York", ...},
     "timestamp": [1604064600, 1604327400],
     "indicators": {"quote": [{"open": [...], "high": [...], "low": [...], "close": [...], "volume": [...]}],
                    "adjclose": [{"adjclose": [...]}]},
     "events": {"dividends": {"1604673000": {"amount": 0.205, "date": 1604673000}}, "splits": {...}}}

Intraday timestamps are the bar start in UTC and are kept as they are, so they stay right across DST.
Daily, weekly and monthly bars are stamped at the open of their first session; they are keyed instead by
the session's date in the exchange's timezone at 00:00 UTC (weekly: that week's Monday; monthly: the 1st
of the month), which puts them on the core's 1d, 1w and 1M grids. An empty range has no ``timestamp`` at all.

Two quirks are handled here, on the raw timestamps, before anything else: Yahoo appends a live row
(stamped at the last trade, off the bar grid) after the last bar, which is dropped; and some bars come
with every price null, which are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from etl.errors import SourceError
from etl.timeframes import to_ms

from .intervals import ACTIONS_INTERVAL, Interval

if TYPE_CHECKING:
    import polars as pl

PRICES = ("open", "high", "low", "close")
ACTION_KINDS = (("dividends", "dividend"), ("splits", "split"), ("capitalGains", "capital_gain"))
# Yahoo sometimes stamps a daily bar at 22:00 or 23:00 of the day before instead of 00:00 (a DST slip).
SLIPPED_MIDNIGHT_HOURS = (22, 23)


@dataclass
class Bars:
    """Bars parsed from one chart result, and what was thrown away on the way."""

    frame: pl.DataFrame
    null_rows: int = 0
    live_row: int | None = None


def parse_bars(result: dict[str, Any], interval: Interval, symbol: str, adjusted: bool) -> Bars:
    """Bars with ``ts`` (epoch ms, bar start or session key), OHLCV and, unless ``adjusted``, ``adj_close``."""
    import polars as pl

    stamps: list[int] = list(result.get("timestamp") or [])
    quote = (result.get("indicators", {}).get("quote") or [{}])[0]
    adjclose = (result.get("indicators", {}).get("adjclose") or [{}])[0].get("adjclose")
    columns = {
        "stamp": stamps,
        **{name: _column(quote.get(name), stamps, symbol) for name in (*PRICES, "volume")},
        "adj_close": _column(adjclose, stamps, symbol),
    }
    zone = _zone(result, symbol) if interval.session_keyed and stamps else None
    live_row = None
    if _trailing_live_row(stamps, interval, zone):
        live_row = stamps[-1] * 1000
        columns = {name: values[:-1] for name, values in columns.items()}
    schema = {name: pl.Int64 if name == "stamp" else pl.Float64 for name in columns}
    frame = pl.DataFrame(columns, schema=schema)
    all_null = pl.all_horizontal(pl.col(name).is_null() for name in PRICES)
    null_rows = frame.filter(all_null).height
    frame = frame.filter(~all_null)
    if zone is not None:
        keys = [session_key(stamp, zone, interval) for stamp in frame["stamp"]]
        frame = frame.with_columns(pl.Series("ts", keys, pl.Int64))
    else:
        frame = frame.with_columns((pl.col("stamp") * 1000).alias("ts"))
    if adjusted:
        ratio = (pl.col("adj_close") / pl.col("close")).fill_null(1.0)
        frame = frame.with_columns(pl.col(name) * ratio for name in PRICES).drop("adj_close")
    frame = frame.drop("stamp").select("ts", *PRICES, "volume", *([] if adjusted else ["adj_close"]))
    return Bars(frame.sort("ts"), null_rows, live_row)


def parse_actions(result: dict[str, Any], symbol: str) -> pl.DataFrame:
    """Dividends, splits and capital gains, keyed by their ex-date at 00:00 UTC like daily bars."""
    import polars as pl

    events = result.get("events") or {}
    rows = []
    for field, action in ACTION_KINDS:
        for event in (events.get(field) or {}).values():
            numerator, denominator = event.get("numerator"), event.get("denominator")
            value = numerator / denominator if action == "split" else event.get("amount")
            rows.append((event["date"], action, value, numerator, denominator))
    schema = {"stamp": pl.Int64, "action": pl.String, "value": pl.Float64, "numerator": pl.Float64,
              "denominator": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    if not frame.height:
        return frame.rename({"stamp": "ts"})
    zone = _zone(result, symbol)
    keys = [session_key(stamp, zone, ACTIONS_INTERVAL) for stamp in frame["stamp"]]
    return frame.with_columns(pl.Series("ts", keys, pl.Int64)).drop("stamp").select(
        "ts", "action", "value", "numerator", "denominator").sort("ts", "action")


def session_key(stamp: int, zone: ZoneInfo, interval: Interval) -> int:
    """The epoch ms of 00:00 UTC on the session date of a daily bar (the Monday of a weekly bar, the 1st of a
    monthly one)."""
    local = datetime.fromtimestamp(stamp, UTC).astimezone(zone)
    day = local.date()
    if local.minute == 0 and local.hour in SLIPPED_MIDNIGHT_HOURS:
        day += timedelta(days=1)
    if interval.timeframe == "1w":
        day -= timedelta(days=day.weekday())
    elif interval.timeframe == "1M":
        day = day.replace(day=1)
    return to_ms(datetime.combine(day, time(), UTC))


def _trailing_live_row(stamps: list[int], interval: Interval, zone: ZoneInfo | None) -> bool:
    """Is the last row Yahoo's live quote rather than a bar? It is off the minute grid, or inside the previous bar."""
    if not stamps:
        return False
    last = stamps[-1]
    if last % 60:
        return True
    if len(stamps) < 2:
        return False
    previous = stamps[-2]
    if zone is not None:
        return session_key(last, zone, interval) == session_key(previous, zone, interval)
    return 0 < last - previous < interval.bar_ms // 1000


def _zone(result: dict[str, Any], symbol: str) -> ZoneInfo:
    name = (result.get("meta") or {}).get("exchangeTimezoneName")
    if not name:
        raise SourceError(f"yahoo: chart for {symbol} has no meta.exchangeTimezoneName to date its sessions")
    return ZoneInfo(name)


def _column(values: list[Any] | None, stamps: list[int], symbol: str) -> list[Any]:
    """A parallel array, or nulls when Yahoo left it out; a length mismatch is a broken answer."""
    if values is None:
        return [None] * len(stamps)
    if len(values) != len(stamps):
        raise SourceError(f"yahoo: chart for {symbol} has {len(values)} values for {len(stamps)} timestamps")
    return list(values)

