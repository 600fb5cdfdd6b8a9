"""public.bybit.com through a local cache: directory pages, and day files checked as far as they can be.

The archive publishes no checksum (``../shared/wire-formats-2.md`` B.6), so a file is trusted when: its
length equals the size its directory page gives (when the page gives one), it inflates with gzip's own
CRC-32 and length trailer intact, and its rows read (``archive_trades.read_day``). Anything else is
``Unusable``: the source downloads it once more, and a second failure leaves the day as a recorded gap.
A cached file is checked again on every read, and its length against the page's size, so a file replaced
upstream is downloaded again instead of read stale.
"""

from __future__ import annotations

import html
import re
import threading
from typing import Any

from etl.cache import FileCache
from etl.errors import PermanentError, SourceError

ARCHIVE_URL = "https://public.bybit.com"
# Links to files (not folders, not the parent) on a directory page; and an autoindex line's trailing size.
LINK = re.compile(r'<a href="([^"?/]+)"')
SIZED = re.compile(r'<a href="([^"?/]+)">[^<]*</a>[ \t]+\S+[ \t]+\S+[ \t]+(\d+)[ \t]*\r?$', re.MULTILINE)


class Unusable(SourceError):
    """The archive cannot give this file: ``reason`` is ``missing`` (404) or ``corrupt``."""

    def __init__(self, key: str, reason: str, detail: str):
        super().__init__(f"{key}: {detail}")
        self.key = key
        self.reason = reason


def _missing_is_unusable(response: Any) -> None:
    if response.status_code == 404:
        raise Unusable(response.url, "missing", f"HTTP 404 from {response.url}")


def parse_index(page: str) -> dict[str, int | None]:
    """File names a directory page links to, with their size in bytes where the line ends with one (web
    servers' autoindex pages do; the real page's shape is not confirmed, so a page of bare links works too)."""
    sizes = {html.unescape(name): int(size) for name, size in SIZED.findall(page)}
    return {name: sizes.get(name) for name in map(html.unescape, LINK.findall(page))}


class PublicArchive:
    """One archive endpoint (``base_url``) behind ``cache``: directory listings once per run, files by key."""

    def __init__(self, base_url: str | None, cache: FileCache, timeout: float):
        from etl.http import HttpClient

        self.base_url = (base_url or ARCHIVE_URL).rstrip("/")
        self.files = HttpClient(self.base_url, timeout=timeout, check=_missing_is_unusable)
        self.cache = cache
        self._listings: dict[str, dict[str, int | None]] = {}
        self._lock = threading.Lock()

    def url(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def listing(self, folder: str, symbol: str) -> dict[str, int | None]:
        """The files of ``folder`` (``trading/BTCUSDT/``) and their sizes, read once per run; an unknown
        symbol's folder (404) is a PermanentError naming it."""
        with self._lock:
            if folder in self._listings:
                return self._listings[folder]
        try:
            page = self.files.request("GET", folder).text
        except Unusable:
            raise PermanentError(f"bybit_archive: public.bybit.com has no folder for {symbol!r} "
                                 f"({self.url(folder)} answers 404); is it a derivatives symbol, spelled as Bybit "
                                 f"lists it?") from None
        with self._lock:
            return self._listings.setdefault(folder, parse_index(page))

    def cached(self, key: str, size: int | None) -> bytes | None:
        """The cached copy of ``key``, if there is one of the listed ``size``."""
        path = self.cache.get(key)
        if path is None:
            return None
        body = path.read_bytes()
        return body if size is None or len(body) == size else None

    def download(self, key: str, size: int | None) -> bytes:
        """The file, downloaded; ``Unusable`` when it is missing or shorter or longer than listed."""
        body = self.files.request("GET", key).content
        if size is not None and len(body) != size:
            raise Unusable(key, "corrupt", f"{len(body):,} bytes where the directory page lists {size:,}")
        return body

    def keep(self, key: str, body: bytes) -> None:
        """Cache a file once it has been read whole (so only files that passed every check are kept)."""
        temp = self.cache.temp(key)
        temp.write_bytes(body)
        self.cache.put(key, temp)

    def forget(self, key: str) -> None:
        self.cache.remove(key)

    def close(self) -> None:
        self.files.close()
