"""What the archive holds, learned from a few listings, so nothing is requested that cannot exist.

The archive is published about once a month, so an incremental run usually asks for hours that are
not there *yet*; those are not gaps and must not cost a request each. A gap is an hour (or a day)
missing between the first and the last published day.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from enum import Enum

from etl.timeframes import DAY, HOUR

from .store import ArchiveStore

L2_PREFIX = "market_data/"
ASSET_CTXS_PREFIX = "asset_ctxs/"


class DayStatus(Enum):
    PUBLISHED = "published"
    GAP = "missing from the archive"
    BEFORE = "before the archive begins"
    UNPUBLISHED = "not published yet"


def day_name(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y%m%d")


def l2_key(coin: str, hour_ms: int) -> str:
    """``market_data/20230916/9/l2Book/SOL.lz4``: the hour is not zero-padded."""
    return f"{L2_PREFIX}{day_name(hour_ms)}/{(hour_ms % DAY) // HOUR}/l2Book/{coin}.lz4"


def asset_ctxs_key(day_ms: int) -> str:
    return f"{ASSET_CTXS_PREFIX}{day_name(day_ms)}.csv.lz4"


class Catalog:
    """Listings of one bucket, each made once per run and shared by every stream."""

    def __init__(self, store: ArchiveStore):
        self.store = store
        self._lock = threading.Lock()
        self._l2_days: list[str] | None = None
        self._asset_ctxs: dict[str, int] | None = None
        self._day_objects: dict[str, dict[str, int]] = {}

    def l2_day(self, day_ms: int) -> DayStatus:
        with self._lock:
            if self._l2_days is None:
                _, prefixes = self.store.list(L2_PREFIX, delimiter="/")
                self._l2_days = sorted(prefix[len(L2_PREFIX):].strip("/") for prefix in prefixes)
        return _status(day_name(day_ms), self._l2_days)

    def asset_ctxs(self) -> dict[str, int]:
        """Size of each published daily asset-context file, by key."""
        with self._lock:
            if self._asset_ctxs is None:
                self._asset_ctxs, _ = self.store.list(ASSET_CTXS_PREFIX)
            return self._asset_ctxs

    def asset_ctxs_day(self, day_ms: int) -> DayStatus:
        days = sorted(key[len(ASSET_CTXS_PREFIX):].split(".")[0] for key in self.asset_ctxs())
        return _status(day_name(day_ms), days)

    def day_objects(self, day_ms: int) -> dict[str, int]:
        """Sizes of every object of one ``market_data`` day (for dry-run plans)."""
        day = day_name(day_ms)
        with self._lock:
            if day not in self._day_objects:
                self._day_objects[day], _ = self.store.list(f"{L2_PREFIX}{day}/")
            return self._day_objects[day]


def _status(day: str, published: list[str]) -> DayStatus:
    if not published or day > published[-1]:
        return DayStatus.UNPUBLISHED
    if day < published[0]:
        return DayStatus.BEFORE
    return DayStatus.PUBLISHED if day in published else DayStatus.GAP
