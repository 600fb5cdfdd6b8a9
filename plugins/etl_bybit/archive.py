"""The ``bybit_archive`` source: trades of Bybit's derivatives from public.bybit.com, one gzip CSV per day.

    [pipelines.bybit_trades.source]
    plugin = "bybit_archive"
    dataset = "trades"
    symbols = ["BTCUSDT", "BTCUSD"]  # linear, inverse and dated futures (BTC-14MAR25) share one folder
    start = "2024-01-01"

A second way into Bybit, not a mode of the ``bybit`` source: it shares nothing with the REST API but the
venue (another host, no ccxt, no rate limit, files instead of pages, a cache, a download pool), and its
options mean nothing to REST (as ``binance_archive`` is beside ``binance``). Its rows are stored as
``source = "bybit"`` (``stored_name``), so they mix with live ``bybit`` trades in one table, one row per trade
(``archive_trades`` says how a row is read).

Each day of a stream's window is a file ``trading/<SYMBOL>/<SYMBOL><YYYY-MM-DD>.csv.gz`` found on the symbol's
directory page (read once per run); nothing is read before the symbol's first file, and an unknown symbol (no
folder) fails its stream. Files are downloaded ``downloads`` at a time, shared by every stream, up to twice
that many ahead of the reader, and kept in a size-capped cache once read whole, so a rerun or ``--resume``
reads them from disk. A resumed backfill starts at its checkpoint (the last committed millisecond, with the
trade ids committed at it), so the days before it are not read again.

There is no checksum to verify against (``public``): a file is checked by its size on the directory page,
gzip's CRC-32 and length, and its rows (``archive_trades``). A file that fails is downloaded once more; a
second failure, or a day the archive lacks a day after it ended, is a warning, a counter
(``archive_files_unusable``, ``archive_files_missing``) and a **recorded gap** (``etl status --gaps``;
``etl heal`` asks again), never a silent hole: Bybit's REST API keeps only the last 1000 trades, so nothing
can fill it now. Days not published yet (yesterday, today) are left for the next run.

Options: ``base_url`` (default ``https://public.bybit.com``), ``cache_dir`` (default ``~/.cache/market-etl``,
under ``bybit-public/``), ``cache_max_mb`` (default 4096; least recently read files go first), ``downloads``
(default 4), ``timeout`` (seconds, default 30; failures are retried as for every network source).
``etl backfill --dry-run`` lists every file with its size (cached or not), the absent days and the bytes to
download.

Not confirmed (``../shared/wire-formats-2.md`` B.6, E.6): the directory page's exact HTML (read: every file link,
and a size where a line ends with one, as web servers' autoindex pages write it; without sizes the dry run says
"size unknown" and only gzip and the rows check a file); when a day's file is published (taken as within a day
of the day's end); that ``trdMatchID`` is the live frame's trade id; the date the ``RPI`` column appeared (both
layouts are read). Spot files (``spot/``, another layout, with per-file counters as ids that match no live id)
are not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import etl
from etl.cache import FileCache, human_size
from etl.downloads import Downloads, archive_options
from etl.errors import ConfigError
from etl.gaps import Gap
from etl.log import get_logger
from etl.timeframes import DAY, from_ms, iso, now_ms, parse_time

from .archive_trades import read_day
from .public import PublicArchive, Unusable

if TYPE_CHECKING:
    import polars as pl

log = get_logger("etl_bybit")

CACHE_FOLDER = "bybit-public"
PUBLISHED_AFTER = DAY  # a day's file may be missing until a day after the day ends (when Bybit adds it: UNCONFIRMED)
T = TypeVar("T")


@dataclass(frozen=True)
class DayFile:
    """One day of a symbol's trades: ``key`` on the archive, ``size`` from its directory page (None when the
    page gives none), or ``why`` it is absent: ``missing`` (a gap) or ``recent`` (not published yet)."""

    key: str
    day: int
    size: int | None = None
    why: str = ""

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


class BybitArchiveSource(etl.Source):
    name = "bybit_archive"
    datasets = ("trades",)
    network = True
    options = archive_options("files")

    def __init__(self, config: etl.SourceConfig):
        super().__init__(config)
        self.downloads = Downloads(self.settings, CACHE_FOLDER, self._client, "bybit-archive")

    def _client(self, cache: FileCache) -> PublicArchive:
        return PublicArchive(self.base_url, cache, self.settings["timeout"])

    @property
    def stored_name(self) -> str:
        return "bybit"

    def check(self) -> None:
        for symbol in self.config.symbols:
            if symbol != symbol.upper() or "/" in symbol:
                raise ConfigError(f"Symbol {symbol!r}: the archive names symbols as Bybit does (BTCUSDT, BTCUSD)")

    def archive(self) -> PublicArchive:
        return self.downloads.client()

    def day_files(self, stream: etl.Stream, start: int, end: int) -> list[DayFile]:
        """The days of ``[start, end)`` from the symbol's first file on, each listed or why not."""
        folder = f"trading/{stream.symbol}/"
        listed = self.archive().listing(folder, stream.symbol)
        names = sorted(name for name in listed if name.startswith(stream.symbol) and name.endswith(".csv.gz"))
        if not names:
            return []
        first = _day_of(names[0], stream.symbol)
        found, now = [], now_ms()
        for day in range(max(first, start - start % DAY), end, DAY):
            name = f"{stream.symbol}{from_ms(day):%Y-%m-%d}.csv.gz"
            why = "" if name in listed else "recent" if day + DAY + PUBLISHED_AFTER > now else "missing"
            found.append(DayFile(folder + name, day, listed.get(name), why))
        return found

    # --- reading ---

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        files = self.day_files(stream, start, end)
        listed = [file for file in files if not file.why]
        loads = self.downloads.ahead(listed, lambda file: self._load(stream, file))
        for file in files:
            if file.why:
                self._absent(stream, file, start, end)
                continue
            _, load = next(loads)
            try:
                frame = load.result()
            except Unusable as exc:
                self._unusable(stream, file, exc, start, end)
                continue
            if not frame["ts"].is_sorted():
                self.count(stream, "archive_files_reordered", 1)
                frame = frame.sort("ts", maintain_order=True)
            yield _between(frame, start, end)

    def _load(self, stream: etl.Stream, file: DayFile) -> pl.DataFrame:
        """The day's rows from the cached copy, else downloaded (twice at most); ``Unusable`` if neither reads."""
        archive = self.archive()
        body = archive.cached(file.key, file.size)
        if body is not None:
            try:
                return read_day(body, file.key, stream.symbol, file.day, file.day + DAY)
            except Unusable:
                log.warning("bybit archive cached file unreadable, downloading it again", key=file.key)
        archive.forget(file.key)
        try:
            return self._downloaded(stream, file)
        except Unusable as exc:
            if exc.reason == "missing":
                raise
            log.warning("bybit archive file unusable, downloading it again", url=archive.url(file.key),
                        reason=str(exc))
        return self._downloaded(stream, file)

    def _downloaded(self, stream: etl.Stream, file: DayFile) -> pl.DataFrame:
        """Download and read a file; cache it only once it has read whole."""
        body = self.archive().download(file.key, file.size)
        frame = read_day(body, file.key, stream.symbol, file.day, file.day + DAY)
        self.archive().keep(file.key, body)
        return frame

    def _absent(self, stream: etl.Stream, file: DayFile, start: int, end: int) -> None:
        if file.why == "missing":
            log.warning("bybit archive file missing, left as a gap", url=self.archive().url(file.key),
                        stream=stream.label)
            self.count(stream, "archive_files_missing", 1)
            self._gap(stream, file, start, end)

    def _unusable(self, stream: etl.Stream, file: DayFile, error: Unusable, start: int, end: int) -> None:
        log.warning("bybit archive file unusable, left as a gap", url=self.archive().url(file.key),
                    reason=str(error), stream=stream.label)
        self.count(stream, "archive_files_unusable" if error.reason == "corrupt" else "archive_files_missing", 1)
        self._gap(stream, file, start, end)

    def _gap(self, stream: etl.Stream, file: DayFile, start: int, end: int) -> None:
        from etl.report import current_tally

        tally = current_tally()
        if tally is not None:
            tally.gaps(stream, [Gap(max(start, file.day), min(end, file.day + DAY), 0)])

    # --- dry run ---

    def plan(self, stream: etl.Stream, start: int, end: int) -> Iterator[str]:
        """The files a backfill would read (size, cached or not) and the days the archive lacks."""
        archive = self.archive()
        yield f"{stream.label}: {iso(start)} .. {iso(end)} from {archive.base_url}"
        files = self.day_files(stream, start, end)
        listed = [file for file in files if not file.why]
        fresh = [file for file in listed if archive.cache.get(file.key) is None]
        for file in files:
            if file.why:
                what = "missing from the archive: a gap" if file.why == "missing" else "not in the archive yet"
                yield f"  {iso(file.day)[:10]}: {what} ({file.name})"
            else:
                cached = "" if file in fresh else "  (cached)"
                yield f"  {archive.url(file.key)}  {_size(file.size)}{cached}"
        total, download = (sum(file.size or 0 for file in chosen) for chosen in (listed, fresh))
        unknown = sum(file.size is None for file in fresh)
        yield (f"  {len(listed)} files, {human_size(total)}; to download: {len(fresh)} files, {human_size(download)} "
               f"({download:,} bytes{f'; {unknown} of unknown size' if unknown else ''}); "
               f"{len(files) - len(listed)} days absent")

    def close(self) -> None:
        self.downloads.close()


def _day_of(name: str, symbol: str) -> int:
    return parse_time(name.removeprefix(symbol).removesuffix(".csv.gz"))


def _size(size: int | None) -> str:
    return "size unknown" if size is None else human_size(size)


def _between(frame: pl.DataFrame, start: int, end: int) -> pl.DataFrame:
    """The rows in ``[start, end)`` of an ascending frame: a slice, no copy."""
    ts = frame["ts"]
    first, stop = ts.search_sorted(start, "left"), ts.search_sorted(end, "left")
    return frame.slice(first, stop - first)
