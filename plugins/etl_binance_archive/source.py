"""The ``binance_archive`` source: klines, aggregate trades and funding rates from data.binance.vision, verified,
with REST for what it lacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING

import etl
from etl.cache import FileCache, human_size
from etl.downloads import Downloads, archive_options
from etl.errors import ConfigError, PermanentError
from etl.log import get_logger
from etl.timeframes import DAY, iso, next_bar, now_ms

from . import funding, klines, metrics, symbols, trades
from .heal import Rest
from .layout import MARKETS, File, Folder, Span, days, months
from .store import Archive, Unusable

if TYPE_CHECKING:
    import polars as pl

# A dataset's archive data type, and the reader of one of its zips: (rows, repeated rows dropped) in time order.
Reader = Callable[[bytes, str], Iterator[tuple["pl.DataFrame", int]]]
DATA: dict[str, tuple[str, Reader]] = {
    "ohlcv": ("klines", klines.frames),
    "trades": ("aggTrades", trades.frames),
    "funding": ("fundingRate", funding.frames),
}

log = get_logger("etl_binance_archive")

TIMEFRAMES = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w", "1M")
# How long after its period a file may still be unpublished: daily files appear the next morning, monthly
# ones "on the first Monday of the month". Files missing later than that are healed and counted.
DAILY_DELAY, MONTHLY_DELAY = DAY, 8 * DAY
CACHE_FOLDER = "binance-vision"


class BinanceArchiveSource(etl.Source):
    name = "binance_archive"
    datasets = (*DATA, *metrics.DATASETS)
    timeframes = TIMEFRAMES
    network = True
    options = {
        "market": etl.Option(str, "spot", help="spot, usdm (USD-M futures) or coinm (COIN-M futures)",
                            choices=tuple(MARKETS)),
        "rest_url": etl.Option(str, None, help="Binance's REST API for what the archive lacks; default Binance's"),
        **archive_options("zips"),
        "heal": etl.Option(bool, True, help="read what the archive lacks from the REST API; false: leave gaps "
                           "(where the REST API is out of reach, e.g. geo-blocked, and the archive is not)"),
    }

    def __init__(self, config: etl.SourceConfig):
        super().__init__(config)
        self.rest = Rest(config, self.settings["market"], self.settings["rest_url"])
        self.downloads = Downloads(self.settings, CACHE_FOLDER, self._client, "binance-archive")

    def _client(self, cache: FileCache) -> Archive:
        return Archive(self.base_url, cache, self.settings["timeout"])

    @property
    def stored_name(self) -> str:
        return "binance"

    def check(self) -> None:
        for symbol in self.config.symbols:
            if symbol != symbol.upper() or "/" in symbol:
                raise ConfigError(f"Symbol {symbol!r}: the archive names symbols as Binance does (BTCUSDT)")
        metrics.check(self)
        market = self.settings["market"]
        if self.config.dataset == "funding" and market == "spot":
            raise ConfigError("binance_archive dataset 'funding' needs a futures market: set market to 'usdm' or "
                              "'coinm' (it is 'spot')")
        if self.config.dataset == "ohlcv" and "1s" in self.config.timeframes and market != "spot":
            raise ConfigError(f"binance_archive: 1s klines exist in the spot archive only (market is {market!r})")

    @property
    def heals(self) -> bool:
        """Whether what the archive lacks is read from the REST API (the binance source reads every market the
        archive has: spot, USD-M and COIN-M)."""
        return self.settings["heal"]

    def unit(self, stream: etl.Stream) -> str:
        return "bars" if stream.dataset == "ohlcv" else "rows"

    def archive(self) -> Archive:
        return self.downloads.client()

    def list_symbols(self, volumes: bool = False) -> list[etl.Listing]:
        return symbols.list_symbols(self, volumes)

    # --- which files, and what REST fills in ---

    def pieces(self, stream: etl.Stream, start: int, end: int) -> list[File | Span]:
        """The archive files and REST spans covering ``[start, end)`` in time order: monthly files for closed
        months, daily files where a month has none (the current month, a month not published yet) or where the
        data type is read day by day (aggTrades)."""
        if stream.dataset in metrics.DATASETS:
            return metrics.pieces(self, stream, start, end)
        folder = Folder(self.settings["market"], stream.symbol, DATA[stream.dataset][0], stream.timeframe or "")
        monthly = self.archive().listing(folder.folder("monthly")) if folder.has_monthly else {}
        start, now = max(start, self._first_bar(folder, monthly)), now_ms()
        end = min(end, symbols.klines_end(self, folder, monthly, end) or end)  # a delisted symbol's files stop
        monthly = monthly if folder.reads_monthly else {}
        found: list[File | Span] = []
        for month in months(start, end):
            month_end = next_bar(month, "1M")
            key = folder.monthly_key(month)
            if key in monthly:
                found.append(File(key, month, month_end, monthly[key]))
            elif folder.has_daily:
                found += self._days(folder, month, max(start, month), min(end, month_end), now)
            else:
                found.append(Span(max(start, month), min(end, month_end), _why(month_end, MONTHLY_DELAY, now), key))
        return found

    def _days(self, folder: Folder, month: int, start: int, end: int, now: int) -> list[File | Span]:
        daily = self.archive().listing(folder.daily_prefix(month))
        found: list[File | Span] = []
        for day in days(start, end):
            key = folder.daily_key(day)
            if key in daily:
                found.append(File(key, day, day + DAY, daily[key]))
            else:
                found.append(Span(max(start, day), min(end, day + DAY), _why(day + DAY, DAILY_DELAY, now), key))
        return found

    def _first_bar(self, folder: Folder, monthly: dict[str, int]) -> int:
        """Where the symbol's archive begins (its first file); before it there is nothing to read or heal."""
        zips = [key for key in monthly if key.endswith(".zip")]
        if not zips and folder.has_daily:
            zips = [key for key in self.archive().listing(folder.folder("daily")) if key.endswith(".zip")]
        if not zips:
            what = f"{folder.timeframe} {folder.data_type}" if folder.timeframe else folder.data_type
            raise PermanentError(
                f"binance_archive: no {what} for {folder.symbol!r} in the {folder.market} archive "
                f"({self.archive().url(folder.folder(folder.periods[0]))}); is it a {folder.market} symbol, "
                f"spelled as Binance lists it?"
            )
        return folder.period_start(min(zips))

    # --- reading ---

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        if stream.dataset in metrics.DATASETS:
            yield from metrics.fetch(self, stream, start, end)
            return
        for piece, download in self._download_ahead(self.pieces(stream, start, end)):
            if isinstance(piece, Span):
                yield from self._from_rest(stream, piece)
            else:
                assert download is not None
                yield from self._read(stream, piece, download, max(start, piece.start), min(end, piece.end))

    def _read(self, stream: etl.Stream, piece: File, download: Future[bytes], start: int,
              end: int) -> Iterator[pl.DataFrame]:
        """One file's rows in ``[start, end)``. A file that cannot be parsed after some blocks (trades are read a
        block at a time; their bytes verified first) is healed whole: its REST rows replace the same keys."""
        read = DATA[stream.dataset][1]
        try:
            for frame, repeats in read(download.result(), piece.key):
                self.count(stream, "repeated_rows_dropped", repeats)
                if frame.height and frame["ts"][0] >= end:
                    return
                yield _between(frame, start, end)
        except Unusable as exc:
            yield from self._heal(stream, piece, exc, start, end)

    def _download_ahead(self, pieces: list[File | Span]) -> Iterator[tuple[File | Span, Future[bytes] | None]]:
        """Each piece with its download (files; REST spans have none), a few ahead of the reader."""
        return self.downloads.ahead(pieces, lambda piece: self.archive().fetch(piece.key),
                                    lambda piece: isinstance(piece, File))

    def _heal(self, stream: etl.Stream, piece: File, error: Unusable, start: int, end: int) -> Iterator[pl.DataFrame]:
        """``[start, end)`` of an unusable file, from the REST API."""
        if error.reason == "corrupt":
            self.archive().forget(piece.key)
        log.warning("binance archive file unusable", url=self.archive().url(piece.key), reason=str(error),
                    stream=stream.label, healed_from_rest=self.heals)
        self.count(stream, "archive_files_unusable", 1)
        yield from self._from_rest(stream, Span(start, end, "unusable", piece.key))

    def _from_rest(self, stream: etl.Stream, span: Span) -> Iterator[pl.DataFrame]:
        """Rows the archive lacks, read from the REST API; without healing a gap, and recent rows wait."""
        if not self.heals:
            if span.why == "missing":
                log.warning("binance archive file missing, left as a gap", url=self.archive().url(span.key),
                            span=f"{iso(span.start)}..{iso(span.end)}", stream=stream.label, why="heal = false")
                self.count(stream, "archive_files_missing", 1)
            return
        rows = 0
        for frame in self.rest.fetch(stream, span.start, span.end):
            rows += frame.height
            yield frame
        unit = self.unit(stream)
        if span.why == "missing" and rows:
            log.warning("binance archive file missing, healed from REST", url=self.archive().url(span.key),
                        span=f"{iso(span.start)}..{iso(span.end)}", stream=stream.label, **{unit: rows})
        self.count(stream, f"recent_{unit}" if span.why == "recent" else f"healed_{unit}", rows)

    # --- dry run ---

    def plan(self, stream: etl.Stream, start: int, end: int) -> Iterator[str]:
        """The files a backfill would read (size, cached or not) and the spans REST would fill."""
        archive = self.archive()
        yield f"{stream.label}: {iso(start)} .. {iso(end)} from {archive.base_url}"
        pieces = self.pieces(stream, start, end)
        files = [piece for piece in pieces if isinstance(piece, File)]
        fresh = [piece for piece in files if archive.cached(piece.key) is None]
        for piece in pieces:
            if isinstance(piece, File):
                cached = "" if piece in fresh else "  (cached)"
                yield f"  {archive.url(piece.key)}  {human_size(piece.size)}{cached}"
            else:
                what = "missing from the archive" if piece.why == "missing" else "not in the archive yet"
                yield f"  REST {iso(piece.start)} .. {iso(piece.end)}: {what} ({piece.key.rsplit('/', 1)[-1]})"
        total, download = sum(piece.size for piece in files), sum(piece.size for piece in fresh)
        yield (f"  {len(files)} files, {human_size(total)}; to download: {len(fresh)} files, {human_size(download)} "
               f"({download:,} bytes); {len(pieces) - len(files)} spans from the REST API")

    def close(self) -> None:
        self.downloads.close()
        self.rest.close()


def _why(period_end: int, delay: int, now: int) -> str:
    return "recent" if period_end + delay > now else "missing"


def _between(frame: pl.DataFrame, start: int, end: int) -> pl.DataFrame:
    """The rows in ``[start, end)`` of an ascending frame: a slice, no copy."""
    ts = frame["ts"]
    first, stop = ts.search_sorted(start, "left"), ts.search_sorted(end, "left")
    return frame.slice(first, stop - first)
