"""Where data.binance.vision keeps a stream's klines, and which files cover a window.

``data/<market>/<period>/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<date>.zip``, a ``.CHECKSUM`` beside
each: monthly files (``2024-01``) for every interval, daily files (``2024-01-31``) for intervals up to a day.
The monthly interval is spelled ``1mo`` (``1M`` and ``1m`` would collide on case-insensitive disks).
"""

from __future__ import annotations

from dataclasses import dataclass

from etl.timeframes import DAY, from_ms, next_bar, parse_time

MARKETS = {"spot": "spot", "usdm": "futures/um"}
DAILY_TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")


def interval(timeframe: str) -> str:
    return "1mo" if timeframe == "1M" else timeframe


@dataclass(frozen=True)
class Folder:
    """One stream's klines in one market: the monthly folder and the daily one."""

    market: str
    symbol: str
    timeframe: str

    def folder(self, period: str) -> str:
        return f"data/{MARKETS[self.market]}/{period}/klines/{self.symbol}/{interval(self.timeframe)}/"

    def monthly_key(self, month: int) -> str:
        return f"{self.folder('monthly')}{self.symbol}-{interval(self.timeframe)}-{from_ms(month):%Y-%m}.zip"

    def daily_key(self, day: int) -> str:
        return f"{self.folder('daily')}{self.symbol}-{interval(self.timeframe)}-{from_ms(day):%Y-%m-%d}.zip"

    def daily_prefix(self, month: int) -> str:
        """The prefix of one month's daily files, so a listing returns only those."""
        return f"{self.folder('daily')}{self.symbol}-{interval(self.timeframe)}-{from_ms(month):%Y-%m}-"

    def period_start(self, key: str) -> int:
        """Where the period of a monthly or daily file begins (``...-2024-01.zip``, ``...-2024-01-31.zip``)."""
        date = key.rsplit("/", 1)[-1].removeprefix(f"{self.symbol}-{interval(self.timeframe)}-").removesuffix(".zip")
        return parse_time(date if len(date) == 10 else f"{date}-01")

    @property
    def has_daily(self) -> bool:
        return self.timeframe in DAILY_TIMEFRAMES


@dataclass(frozen=True)
class File:
    """An archive file holding the bars that open in ``[start, end)``; ``size`` in bytes, from the listing."""

    key: str
    start: int
    end: int
    size: int


@dataclass(frozen=True)
class Span:
    """Bars the archive cannot give, read from the REST API instead: ``why`` is ``"missing"`` (a closed
    period the archive should hold), ``"unusable"`` (its file failed verification or reading: both healed) or
    ``"recent"`` (not published yet); ``key`` the file it lacks."""

    start: int
    end: int
    why: str
    key: str


def months(start: int, end: int) -> list[int]:
    """The starts of the calendar months that ``[start, end)`` touches."""
    month = from_ms(start).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first = int(month.timestamp() * 1000)
    found = []
    while first < end:
        found.append(first)
        first = next_bar(first, "1M")
    return found


def days(start: int, end: int) -> range:
    return range(start - start % DAY, end, DAY)
