"""A local cache of downloaded archive files, shared by every pipeline on the machine, with a size cap.

Archive sources (``hyperliquid_archive``, ``binance_archive``) download large immutable-ish objects; a rerun,
a resumed backfill or another pipeline reading the same month should not download them again. Files join
the cache whole (written to a temporary file, then renamed), so a killed download never leaves half a file
under its real name. Past ``max_bytes`` the least recently read files are removed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from stat import S_ISREG

STALE_PART_SECONDS = 3600


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/market-etl`` (or ``~/.cache/market-etl``): shared by every project on the machine."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "market-etl"


class FileCache:
    """Files under ``root`` by key (a relative path); ``max_bytes`` None means no cap."""

    def __init__(self, root: Path, max_bytes: int | None = None):
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> Path | None:
        """The cached file, marked as just read (eviction removes the least recently read first)."""
        path = self.path(key)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def temp(self, key: str) -> Path:
        """A temporary file beside where ``key`` goes, unique to this thread, for ``put`` to move in."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")

    def put(self, key: str, temp: Path) -> Path:
        """Move a finished ``temp`` file in as ``key``, then trim the cache to its cap."""
        target = self.path(key)
        os.replace(temp, target)
        self.trim(keep=target)
        return target

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def trim(self, keep: Path | None = None) -> None:
        """Remove the least recently read files until the cache fits ``max_bytes`` (never ``keep``)."""
        if self.max_bytes is None:
            return
        with self._lock:
            files = sorted(self._files(), key=lambda item: item[0].st_mtime)
            total = sum(stat.st_size for stat, _ in files)
            for stat, entry in files:
                if total <= self.max_bytes:
                    break
                if entry != keep:
                    entry.unlink(missing_ok=True)
                    total -= stat.st_size

    def _files(self) -> Iterator[tuple[os.stat_result, Path]]:
        """Finished files; a temporary file is being written, unless a killed process left it (an hour old)."""
        for entry in self.root.rglob("*"):
            try:
                stat = entry.stat()
            except FileNotFoundError:  # renamed into place or removed meanwhile
                continue
            if not S_ISREG(stat.st_mode):
                continue
            if not entry.name.endswith(".part"):
                yield stat, entry
            elif time.time() - stat.st_mtime > STALE_PART_SECONDS:
                entry.unlink(missing_ok=True)


def human_size(size: float) -> str:
    """Bytes as a dry run prints them: ``812 B``, ``3.4 MiB``."""
    if size < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"
