"""data.binance.vision through a local cache: listings, and zips verified against their ``.CHECKSUM``.

A zip is used only once its sha256 matches the ``.CHECKSUM`` published beside it. A mismatch is downloaded
once more (a cut transfer, a file replaced mid-download); a second mismatch, a zip without a checksum, or
a file the archive does not have (404) is ``Unusable``, and the source heals that span from the REST API.
Verified zips are kept in the cache with their checksum and verified again whenever they are read, so a
disk error cannot slip a bad file in either; objects are mutable upstream, so the checksum, not the date,
is what a cached copy is pinned to.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from etl.cache import FileCache
from etl.errors import SourceError
from etl.log import get_logger

from .listing import list_files

log = get_logger("etl_binance_archive")

ARCHIVE_URL = "https://data.binance.vision"
LISTING_URL = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"


class Unusable(SourceError):
    """The archive cannot give this file: ``reason`` is ``missing`` (404) or ``corrupt``."""

    def __init__(self, key: str, reason: str, detail: str):
        super().__init__(f"{key}: {detail}")
        self.key = key
        self.reason = reason


class _Mismatch(Exception):
    """A cached file no longer matches its checksum (a disk error, an edit)."""


def _missing_is_unusable(response: Any) -> None:
    if response.status_code == 404:
        key = response.url.split("/data/", 1)[-1]
        raise Unusable(f"data/{key}", "missing", f"HTTP 404 from {response.url}")


class Archive:
    """One archive endpoint (``base_url``) and its listing endpoint, behind ``cache``."""

    def __init__(self, base_url: str | None, cache: FileCache, timeout: float):
        from etl.http import HttpClient

        self.base_url = (base_url or ARCHIVE_URL).rstrip("/")
        # data.binance.vision answers listings with an HTML page; the bucket's S3 endpoint answers XML.
        # A mirror or a test server given as base_url serves both.
        listing_url = base_url.rstrip("/") if base_url else LISTING_URL
        self.files = HttpClient(self.base_url, timeout=timeout, check=_missing_is_unusable)
        self.lists = HttpClient(listing_url, timeout=timeout)
        self.cache = cache
        self._listings: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def url(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def listing(self, prefix: str) -> dict[str, int]:
        """Keys under ``prefix`` and their sizes, listed once per run."""
        with self._lock:
            if prefix in self._listings:
                return self._listings[prefix]
        found = list_files(self.lists, prefix)
        with self._lock:
            return self._listings.setdefault(prefix, found)

    def cached(self, key: str) -> Path | None:
        return self.cache.get(key) if self.cache.get(key + ".CHECKSUM") else None

    def fetch(self, key: str) -> bytes:
        """The verified zip (from the cache, or downloaded); ``Unusable`` if it cannot be had.

        Its bytes, not its path: a cache smaller than the files read ahead may evict a file before it is read.
        """
        try:
            return self._from_cache(key)
        except (FileNotFoundError, _Mismatch):
            self.forget(key)
        return self._download(key)

    def _from_cache(self, key: str) -> bytes:
        if self.cached(key) is None:
            raise FileNotFoundError(key)
        expected = _digest(self.cache.path(key + ".CHECKSUM").read_bytes(), key)
        body = self.cache.path(key).read_bytes()
        if expected is None or _sha256(body) != expected:
            log.warning("binance archive cached file fails its checksum, downloading it again", key=key)
            raise _Mismatch(key)
        return body

    def forget(self, key: str) -> None:
        """Drop a file from the cache (it verified but cannot be read: a bad upload)."""
        self.cache.remove(key)
        self.cache.remove(key + ".CHECKSUM")

    def _download(self, key: str) -> bytes:
        try:
            checksum = self.files.request("GET", key + ".CHECKSUM").content
        except Unusable:
            raise Unusable(key, "corrupt", "no .CHECKSUM published beside it: it cannot be verified") from None
        expected = _digest(checksum, key)
        if expected is None:
            raise Unusable(key, "corrupt", f"unreadable .CHECKSUM: {checksum[:100]!r}")
        for attempt in (1, 2):
            body = self.files.request("GET", key).content
            actual = _sha256(body)
            if actual == expected:
                self._keep(key, body, checksum)
                return body
            log.warning("binance archive checksum mismatch", url=self.url(key), attempt=attempt, sha256=actual,
                        expected=expected)
        raise Unusable(key, "corrupt", f"sha256 {actual} twice, .CHECKSUM says {expected}")

    def _keep(self, key: str, body: bytes, checksum: bytes) -> None:
        for name, data in ((key + ".CHECKSUM", checksum), (key, body)):
            temp = self.cache.temp(name)
            temp.write_bytes(data)
            self.cache.put(name, temp)

    def close(self) -> None:
        self.files.close()
        self.lists.close()


def _digest(checksum: bytes, key: str) -> str | None:
    """The sha256 of a ``.CHECKSUM`` file (``<64 hex>  <file name>``, with or without a newline)."""
    words = checksum.decode("ascii", "replace").split()
    if len(words) != 2 or len(words[0]) != 64 or words[1] != key.rsplit("/", 1)[-1]:
        return None
    return words[0].lower()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
