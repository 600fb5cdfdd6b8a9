"""The ``hyperliquid_archive`` source: Hyperliquid's requester-pays S3 archive, the only deep history there is.

Hourly L2 book snapshots (``market_data/{YYYYMMDD}/{H}/l2Book/{COIN}.lz4``) feed ``l2_top`` and
mid-price ``ohlcv``; daily asset contexts (``asset_ctxs/{YYYYMMDD}.csv.lz4``) feed ``asset_ctxs``,
``funding`` and ``open_interest``. Objects are cached locally, so a rerun downloads nothing twice.

Snapshots are filed by *capture* hour while ``ts`` is the exchange time, so the first lines of an hour's
file can belong to the previous hour. Rows are therefore released only once the next hour's file has
been read, which keeps them in time order and lets bars straddling files close correctly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import etl
from etl.cache import default_cache_dir, human_size
from etl.errors import ConfigError, PermanentError
from etl.log import get_logger
from etl.timeframes import DAY, HOUR, MINUTE, ceil_ts, floor_ts, iso, now_ms, timeframe_ms

from . import parsing
from .bars import mid_bars
from .catalog import Catalog, DayStatus, asset_ctxs_key, l2_key
from .store import ArchiveStore

if TYPE_CHECKING:
    import polars as pl

log = get_logger("etl_hyperliquid")

GET_COST_PER_1000 = 0.0004
GIB = 1 << 30
SNAPSHOT_DATASETS = ("l2_top", "ohlcv")


def _non_negative(value: float) -> None:
    if value < 0:
        raise ValueError("must not be negative")


class HyperliquidArchiveSource(etl.Source):
    name = "hyperliquid_archive"
    datasets = ("l2_top", "ohlcv", "asset_ctxs", "funding", "open_interest")
    options = {
        "bucket": etl.Option(str, "hyperliquid-archive", help="the archive bucket (or a mirror of it)"),
        "endpoint_url": etl.Option(str, None, help="S3-compatible endpoint instead of AWS (mirrors, tests)"),
        "region": etl.Option(str, "us-east-1", help="AWS region of the bucket"),
        "cache_dir": etl.Option(Path, None, help="where downloaded objects are kept; default ~/.cache/market-etl"),
        "transfer_cost_per_gb": etl.Option(
            float, 0.09, check=_non_negative,
            help="USD per GB the requester pays for transfer, for dry-run estimates (AWS internet egress)",
        ),
    }

    def __init__(self, config: etl.SourceConfig):
        super().__init__(config)
        self._lock = threading.Lock()
        self._store: ArchiveStore | None = None
        self._catalog: Catalog | None = None
        self._planned: set[str] = set()

    def check(self) -> None:
        for symbol in self.config.symbols:
            if "/" in symbol:
                raise ConfigError(
                    f"Symbol {symbol!r}: the archive holds perpetuals, named by coin (BTC, ETH, ...)"
                )

    def row_interval_ms(self, stream: etl.Stream) -> int:
        if stream.dataset == "l2_top":
            return 1000
        return timeframe_ms(stream.timeframe) if stream.timeframe else MINUTE

    def _archive(self) -> tuple[ArchiveStore, Catalog]:
        with self._lock:
            if self._store is None:
                cache = self.settings["cache_dir"] or default_cache_dir()
                self._store = ArchiveStore(self.settings["bucket"], cache, self.settings["endpoint_url"],
                                           self.settings["region"])
                self._catalog = Catalog(self._store)
            assert self._catalog is not None
            return self._store, self._catalog

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        if stream.dataset == "l2_top":
            frames = self._top(stream, start, end)
        elif stream.dataset == "ohlcv":
            frames = self._bars(stream, start, end)
        else:
            frames = self._contexts(stream, start, end)
        for frame in frames:
            yield parsing.within(frame, start, end)

    def _top(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        """Snapshots of the window, one per millisecond (the later line of a file wins, as a sink's upsert would)."""
        for rows, _ in self._snapshots(stream, *self._hours(stream, start, end)):
            rows = parsing.within(rows, start, end)
            unique = _one_per_ms(rows)
            self.count(stream, "duplicates_dropped", rows.height - unique.height)
            yield unique

    def _hours(self, stream: etl.Stream, start: int, end: int) -> tuple[int, int]:
        """First hour file to read, and the hour whose file is read last, only for stragglers."""
        if stream.timeframe is None:
            return floor_ts(start, "1h"), floor_ts(end - 1, "1h") + HOUR
        first_bar, last_bar = floor_ts(start, stream.timeframe), floor_ts(end - 1, stream.timeframe)
        return floor_ts(first_bar, "1h"), ceil_ts(last_bar + timeframe_ms(stream.timeframe), "1h")

    def _snapshots(self, stream: etl.Stream, first: int, lookahead: int) -> Iterator[tuple[pl.DataFrame, int]]:
        """Yield ``(rows, until)``: snapshots in time order, every one with ``ts < until`` released (two
        snapshots of one millisecond are always released together).

        Stops at the first hour not published yet, holding back the hour before it, whose stragglers
        are in the unpublished file; only the look-ahead hour past the window may be unpublished.
        """
        import polars as pl

        store, catalog = self._archive()
        carry: pl.DataFrame | None = None
        gaps = _Gaps(stream, self.count)
        for hour in range(first, lookahead + HOUR, HOUR):
            status = catalog.l2_day(floor_ts(hour, "1d"))
            if status is DayStatus.UNPUBLISHED or hour + HOUR > now_ms():
                if hour == lookahead and carry is not None:
                    yield carry, lookahead
                elif hour < lookahead:
                    log.info("hyperliquid archive not published yet", stream=stream.label, hour=iso(hour))
                break
            key = l2_key(stream.symbol, hour)
            frame = self._hour_file(stream, store, key) if status is DayStatus.PUBLISHED else None
            if hour < lookahead and status is not DayStatus.BEFORE:
                gaps.hour(hour, key, found=frame is not None)
            parts = [part for part in (carry, frame) if part is not None]
            if not parts:
                continue
            pending = pl.concat(parts).sort("ts", maintain_order=True)
            carry = pending.filter(pl.col("ts") >= hour)
            yield pending.filter(pl.col("ts") < hour), hour
        gaps.close()

    def _hour_file(self, stream: etl.Stream, store: ArchiveStore, key: str) -> pl.DataFrame | None:
        """One hour's snapshots; those with an empty side have no top of book to offer and are left out."""
        frame = _read(store, key, parsing.l2_top, "hour")
        if frame is None:
            return None
        complete = frame.drop_nulls("mid")
        if complete.height < frame.height:
            log.warning("hyperliquid archive snapshots with an empty book side left out", key=key,
                        snapshots=frame.height - complete.height)
            self.count(stream, "one_sided_snapshots_dropped", frame.height - complete.height)
        return complete

    def _bars(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        """Mid-price bars, each released once every hour file it spans has been read."""
        import polars as pl

        assert stream.timeframe is not None
        pending: pl.DataFrame | None = None
        for rows, until in self._snapshots(stream, *self._hours(stream, start, end)):
            rows = _one_per_ms(rows) if pending is None else pl.concat([pending, _one_per_ms(rows)])
            complete = floor_ts(until, stream.timeframe)
            pending = rows.filter(pl.col("ts") >= complete)
            done = rows.filter(pl.col("ts") < complete)
            if done.height:
                yield mid_bars(done, stream.timeframe)

    def _contexts(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        store, catalog = self._archive()
        for day in range(floor_ts(start, "1d"), end, DAY):
            status = catalog.asset_ctxs_day(day)
            if status is DayStatus.UNPUBLISHED:
                log.info("hyperliquid archive not published yet", stream=stream.label, day=iso(day))
                return
            key = asset_ctxs_key(day)
            frame = None
            if status is DayStatus.PUBLISHED:
                frame = _read(store, key, lambda path: parsing.asset_ctxs(path, stream.symbol), "day")
            if frame is None:
                if status is not DayStatus.BEFORE:
                    log.warning("hyperliquid archive day missing (gap)", stream=stream.label, key=key)
                    self.count(stream, "archive_days_missing", 1)
                continue
            yield _context_columns(frame, stream.dataset)

    def plan(self, stream: etl.Stream, start: int, end: int) -> Iterator[str]:
        """List the objects a backfill would download, their sizes and the estimated transfer cost."""
        store, catalog = self._archive()
        yield f"{stream.label}: {iso(start)} .. {iso(end)} from s3://{store.bucket}"
        objects, missing, unpublished = self._planned_objects(stream, start, end, catalog)
        unit = "hours" if stream.dataset in SNAPSHOT_DATASETS else "days"
        new = shared = cached_bytes = download_bytes = downloads = 0
        for key, size in objects:
            if key in self._planned:
                shared += 1
                yield f"  {store.url(key)}  {human_size(size)}  (also read by an earlier stream; counted there)"
                continue
            self._planned.add(key)
            new += 1
            if store.cached(key) is not None:
                cached_bytes += size
                yield f"  {store.url(key)}  {human_size(size)}  (cached)"
            else:
                downloads += 1
                download_bytes += size
                yield f"  {store.url(key)}  {human_size(size)}"
        for key in missing:
            yield f"  {store.url(key)}  missing (gap)"
        per_gb = self.settings["transfer_cost_per_gb"]
        cost = download_bytes / GIB * per_gb + downloads / 1000 * GET_COST_PER_1000
        yield (
            f"  {new} objects, {human_size(download_bytes + cached_bytes)}; to download: {downloads} objects, "
            f"{human_size(download_bytes)} ({download_bytes:,} bytes), estimated ${cost:.4f} "
            f"(${per_gb}/GB transfer + ${GET_COST_PER_1000}/1000 GET requests; requester pays); "
            f"{human_size(cached_bytes)} already cached; {len(missing)} missing; {unpublished} {unit} not published yet"
            + (f"; {shared} shared with earlier streams" if shared else "")
        )

    def _planned_objects(self, stream: etl.Stream, start: int, end: int,
                         catalog: Catalog) -> tuple[list[tuple[str, int]], list[str], int]:
        objects: list[tuple[str, int]] = []
        missing: list[str] = []
        unpublished = 0
        if stream.dataset in SNAPSHOT_DATASETS:
            first, lookahead = self._hours(stream, start, end)
            units = [(hour, l2_key(stream.symbol, hour), catalog.l2_day(floor_ts(hour, "1d")), hour == lookahead)
                     for hour in range(first, lookahead + HOUR, HOUR)]
        else:
            units = [(day, asset_ctxs_key(day), catalog.asset_ctxs_day(day), False)
                     for day in range(floor_ts(start, "1d"), end, DAY)]
        for unit, key, status, optional in units:
            if status is DayStatus.UNPUBLISHED:
                unpublished += not optional
            elif status is not DayStatus.BEFORE:
                sizes = catalog.day_objects(unit) if stream.dataset in SNAPSHOT_DATASETS else catalog.asset_ctxs()
                if key in sizes:
                    objects.append((key, sizes[key]))
                elif not optional:
                    missing.append(key)
        return objects, missing, unpublished

    def close(self) -> None:
        with self._lock:
            self._store = None
            self._catalog = None


def _one_per_ms(snapshots: pl.DataFrame) -> pl.DataFrame:
    return snapshots.unique("ts", keep="last", maintain_order=True)


def _read(store: ArchiveStore, key: str, parse: Callable[[Path], pl.DataFrame], unit: str) -> pl.DataFrame | None:
    """Parse an object through the cache; None if the archive has no such object."""
    with store.fetch(key) as path:
        if path is None:
            return None
        try:
            return parse(path)
        except parsing.CorruptObject as exc:
            raise PermanentError(
                f"{store.url(key)} is corrupt: {exc}; this {unit} fails and the object is not cached "
                f"(a rerun downloads it again)"
            ) from None


class _Gaps:
    """Reports missing archive hours of a stream: a run of consecutive hours as one warning, and a counter."""

    def __init__(self, stream: etl.Stream, count: Callable[[etl.Stream, str, int], None]):
        self.stream = stream
        self.count = count
        self.run: list[tuple[int, str]] = []
        self.missing = 0
        self.found = 0

    def hour(self, hour: int, key: str, found: bool) -> None:
        if found:
            self.found += 1
            self._flush()
        else:
            self.missing += 1
            self.run.append((hour, key))
            self.count(self.stream, "archive_hours_missing", 1)

    def _flush(self) -> None:
        if self.run:
            (first, key), (last, _) = self.run[0], self.run[-1]
            log.warning("hyperliquid archive hours missing (gap)", stream=self.stream.label, first_key=key,
                        hours=len(self.run), gap=f"{iso(first)}..{iso(last + HOUR)}")
            self.run = []

    def close(self) -> None:
        self._flush()
        if self.missing and not self.found:
            log.warning("hyperliquid archive holds no snapshot of this coin in the window", stream=self.stream.label,
                        coin=self.stream.symbol, hint="archive coins are perp names such as BTC; a coin appears "
                        "only from its listing on")
        elif self.missing:
            log.warning("hyperliquid archive gaps", stream=self.stream.label, missing_hours=self.missing)


def _context_columns(frame: pl.DataFrame, dataset: str) -> pl.DataFrame:
    """Per-minute asset contexts as the dataset asked for; funding is the current rate, not a settlement."""
    import polars as pl

    if dataset == "funding":
        return frame.select("ts", funding_rate=pl.col("funding"), premium=pl.col("premium"))
    if dataset == "open_interest":
        return frame.select("ts", "open_interest")
    return frame
