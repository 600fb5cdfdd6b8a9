"""The ``yahoo`` source: OHLCV bars and corporate actions of stocks, ETFs, indices and FX from Yahoo Finance."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import etl
from etl.log import get_logger
from etl.options import positive
from etl.timeframes import iso, next_expr, now_ms

from .calendars import ALWAYS_OPEN, AUTO, NO_CALENDAR, calendar_for
from .intervals import ACTIONS_INTERVAL, INTERVALS, Interval, clamp_start, request_windows

if TYPE_CHECKING:
    import polars as pl

    from .client import ChartClient

log = get_logger("etl.yahoo")

CORPORATE_ACTIONS = etl.Dataset(
    "corporate_actions",
    (("source", "str"), ("symbol", "str"), ("ts", "ts"), ("action", "str"), ("value", "f64")),
    ("source", "symbol", "ts", "action"),
    "dividends, splits and capital gains; ts is the ex-date at 00:00 UTC; value is the cash amount "
    "or the split ratio (numerator and denominator follow as extra columns)",
)

# Warm-up bars are turned into time with ``row_interval_ms``; daily and weekly rows of a market closed at
# weekends and on holidays are further apart than their timeframe. These factors keep even one bar of
# warm-up reaching back over a long weekend (daily) or a closed week (weekly).
SESSION_ROW_FACTORS = {"1d": 5, "1w": 2}


def _known_calendar(value: str) -> None:
    if value in (AUTO, NO_CALENDAR):
        return
    from .calendars import known_calendars

    known = known_calendars()
    if value not in known:
        raise ValueError(f"use auto, none, or an exchange-calendars code: {', '.join(known)}")


class YahooSource(etl.Source):
    name = "yahoo"
    datasets = ("ohlcv", CORPORATE_ACTIONS.name)
    timeframes = tuple(INTERVALS)
    network = True
    options = {
        "adjusted": etl.Option(bool, False, help="scale open/high/low/close by Yahoo's adjusted close "
                                                 "(splits and dividends); default: raw prices plus adj_close"),
        "calendar": etl.Option(str, AUTO, help="exchange-calendars code for gap detection (XNYS, XETR, "
                                               "XSHG, ...); auto: from the symbol's suffix; none: every bar",
                                   check=_known_calendar),
        "requests_per_minute": etl.Option(int, 30, help="pace of chart requests; Yahoo throttles bulk pulls",
                                          check=positive),
        "timeout": etl.Option(float, 30.0, help="seconds to wait for one Yahoo answer", check=positive),
    }

    def __init__(self, config: etl.SourceConfig):
        super().__init__(config)
        self._client: ChartClient | None = None
        self._client_lock = threading.Lock()
        self._warned_calendars: set[str] = set()

    @property
    def client(self) -> ChartClient:
        with self._client_lock:
            if self._client is None:
                from .client import ChartClient

                self._client = ChartClient(self.base_url, self.settings["requests_per_minute"],
                                           self.settings["timeout"])
            return self._client

    def row_interval_ms(self, stream: etl.Stream) -> int:
        factor = SESSION_ROW_FACTORS.get(stream.timeframe or "", 1)
        return super().row_interval_ms(stream) * factor

    def warmup_start(self, stream: etl.Stream, start: int, rows: int) -> int:
        """Reach back ``rows`` trading bars on the market's calendar, over nights, weekends and holidays."""
        calendar = self._calendar(stream.symbol) if stream.timeframe and rows else None
        if calendar is None:
            return super().warmup_start(stream, start, rows)
        from .calendars import trading_bars

        span = rows * self.row_interval_ms(stream)
        for _ in range(10):
            bars = trading_bars(calendar, stream.timeframe, start - span, start, start)
            if len(bars) >= rows:
                return int(bars[-rows].timestamp() * 1000)
            span *= 2
        return start - span

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        if stream.dataset == CORPORATE_ACTIONS.name:
            yield from self._actions(stream, start, end)
            return
        from .chart import parse_bars

        interval = INTERVALS[stream.timeframe or ""]
        now = now_ms()
        start = self._clamped(stream, interval, start, now)
        for piece_start, piece_end in request_windows(interval, start, end):
            result = self._chart(stream, interval, piece_start, piece_end)
            bars = parse_bars(result, interval, stream.symbol, self.settings["adjusted"])
            if bars.live_row is not None:
                log.info("yahoo live row dropped", stream=stream.label, ts=iso(bars.live_row))
            if bars.null_rows:
                self.count(stream, "null_rows_dropped", bars.null_rows)
                log.warning("yahoo all-null rows dropped", stream=stream.label, rows=bars.null_rows,
                            window=f"{iso(piece_start)}..{iso(piece_end)}")
            yield _closed_within(bars.frame, interval, piece_start, piece_end, now)

    def _actions(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        from .chart import parse_actions

        for piece_start, piece_end in request_windows(ACTIONS_INTERVAL, start, end):
            result = self._chart(stream, ACTIONS_INTERVAL, piece_start, piece_end)
            actions = parse_actions(result, stream.symbol)
            yield actions.filter(actions["ts"].is_between(piece_start, piece_end, closed="left"))

    def _chart(self, stream: etl.Stream, interval: Interval, start: int, end: int) -> dict[str, Any]:
        return self.client.chart(stream.symbol, interval.yahoo, start - interval.pad_ms, end + interval.pad_ms)

    def _clamped(self, stream: etl.Stream, interval: Interval, start: int, now: int) -> int:
        clamped, note = clamp_start(interval, start, now)
        if note:
            log.warning("yahoo history limit", stream=stream.label, note=note)
        return clamped

    def plan(self, stream: etl.Stream, start: int, end: int) -> Iterator[str]:
        interval = ACTIONS_INTERVAL if stream.timeframe is None else INTERVALS[stream.timeframe]
        clamped, note = clamp_start(interval, start, now_ms())
        windows = request_windows(interval, clamped, end)
        line = (f"{stream.label}: {len(windows)} chart request(s) of up to {interval.request_days} days, "
                f"{iso(clamped)} .. {iso(end)}")
        yield line + (f" ({note})" if note else "")

    def trading_bars(self, stream: etl.Stream, start: int, end: int) -> pl.Series | None:
        if stream.timeframe is None:
            return None
        calendar = self._calendar(stream.symbol)
        if calendar is None:
            return None
        from .calendars import trading_bars

        return trading_bars(calendar, stream.timeframe, start, end, now_ms())

    def _calendar(self, symbol: str) -> str | None:
        setting = self.settings["calendar"]
        if setting == NO_CALENDAR:
            return None
        if setting != AUTO:
            return setting
        calendar = calendar_for(symbol)
        if calendar is None and symbol not in self._warned_calendars:
            self._warned_calendars.add(symbol)
            log.warning("yahoo symbol has no known trading calendar; gaps are counted on the full grid",
                        symbol=symbol, hint="set the source's calendar option, e.g. calendar = \"XNYS\"")
        return None if calendar == ALWAYS_OPEN else calendar

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _closed_within(frame: pl.DataFrame, interval: Interval, start: int, end: int, now: int) -> pl.DataFrame:
    """Bars keyed inside ``[start, end)`` that have closed: never the bar still forming."""
    import polars as pl

    closes = next_expr(pl.col("ts"), interval.timeframe)
    return frame.filter(pl.col("ts").is_between(start, end, closed="left") & (closes <= now))
