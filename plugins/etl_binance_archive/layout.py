"""Where data.binance.vision keeps a stream's files, and which files cover a window.

``data/<market>/<period>/<type>/<SYMBOL>/[<interval>/]<SYMBOL>-<interval or type>-<date>.zip``, a ``.CHECKSUM``
beside each: monthly files (``2024-01``) and daily ones (``2024-01-31``), as each type publishes them (klines
daily only for intervals up to a day, funding rates monthly only). The monthly interval is spelled ``1mo``
(``1M`` and ``1m`` would collide on case-insensitive disks).
"""

from __future__ import annotations

from dataclasses import dataclass

from etl.timeframes import DAY, from_ms, next_bar, parse_time

MARKETS = {"spot": "spot", "usdm": "futures/um", "coinm": "futures/cm"}
DAILY_TIMEFRAMES = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
PERIODS = {"klines": ("monthly", "daily"), "aggTrades": ("monthly", "daily"), "fundingRate": ("monthly",)}
# Read from daily files although monthly ones exist: a month of BTCUSDT aggTrades is a zip of about a gigabyte,
# held in memory while it is read. Their monthly listing still tells where the symbol's archive begins.
DAY_BY_DAY = ("aggTrades",)


def interval(timeframe: str) -> str:
    return "1mo" if timeframe == "1M" else timeframe


@dataclass(frozen=True)
class Folder:
    """One stream's files of one data type in one market: the monthly folder and the daily one."""

    market: str
    symbol: str
    data_type: str
    timeframe: str = ""

    @property
    def tag(self) -> str:
        """The word between symbol and date in a file name: the interval for klines, else the type."""
        return interval(self.timeframe) if self.timeframe else self.data_type

    def folder(self, period: str) -> str:
        below = f"{interval(self.timeframe)}/" if self.timeframe else ""
        return f"data/{MARKETS[self.market]}/{period}/{self.data_type}/{self.symbol}/{below}"

    def monthly_key(self, month: int) -> str:
        return f"{self.folder('monthly')}{self.symbol}-{self.tag}-{from_ms(month):%Y-%m}.zip"

    def daily_key(self, day: int) -> str:
        return f"{self.folder('daily')}{self.symbol}-{self.tag}-{from_ms(day):%Y-%m-%d}.zip"

    def daily_prefix(self, month: int) -> str:
        """The prefix of one month's daily files, so a listing returns only those."""
        return f"{self.folder('daily')}{self.symbol}-{self.tag}-{from_ms(month):%Y-%m}-"

    def period_start(self, key: str) -> int:
        """Where the period of a monthly or daily file begins (``...-2024-01.zip``, ``...-2024-01-31.zip``)."""
        date = key.rsplit("/", 1)[-1].removeprefix(f"{self.symbol}-{self.tag}-").removesuffix(".zip")
        return parse_time(date if len(date) == 10 else f"{date}-01")

    @property
    def periods(self) -> tuple[str, ...]:
        if self.data_type == "klines" and self.timeframe not in DAILY_TIMEFRAMES:
            return ("monthly",)
        return PERIODS[self.data_type]

    @property
    def has_daily(self) -> bool:
        return "daily" in self.periods

    @property
    def has_monthly(self) -> bool:
        return "monthly" in self.periods

    @property
    def reads_monthly(self) -> bool:
        return self.has_monthly and self.data_type not in DAY_BY_DAY


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
