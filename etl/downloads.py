"""What archive sources share: their cache and download options, a client built at first use, and files
downloaded a few ahead of the reader.

An archive source (``binance_archive``, ``bybit_archive``) reads big files one after the other; downloading
the next ones while the current one is parsed keeps the network busy, and a bound keeps memory flat. The
client and its pool are made at the first read, so ``etl validate`` and ``etl plugins`` open nothing.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from .cache import FileCache, default_cache_dir
from .options import Option, positive

T = TypeVar("T")


class Client(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Client)


def archive_options(files: str) -> dict[str, Option]:
    """The options every archive source has; ``files`` names what it downloads ("zips", "files")."""
    return {
        "cache_dir": Option(Path, None, help=f"where verified {files} are kept; default ~/.cache/market-etl"),
        "cache_max_mb": Option(float, 4096, help=f"size cap of the {files} cache in MiB", check=positive),
        "downloads": Option(int, 4, help=f"{files} downloaded at once, across all streams", check=positive),
        "timeout": Option(float, 30.0, help="seconds to wait for the archive", check=positive),
    }


class Downloads(Generic[C]):
    """An archive client over a size-capped cache (``cache_folder`` under ``cache_dir``) and a pool of
    ``downloads`` threads, made at first use and closed with the source."""

    def __init__(self, settings: dict[str, Any], cache_folder: str, make: Callable[[FileCache], C], name: str):
        self.settings, self.cache_folder, self.make, self.name = settings, cache_folder, make, name
        self._lock = threading.Lock()
        self._client: C | None = None
        self._pool: ThreadPoolExecutor | None = None

    def client(self) -> C:
        with self._lock:
            if self._client is None:
                root = (self.settings["cache_dir"] or default_cache_dir()) / self.cache_folder
                self._client = self.make(FileCache(root, int(self.settings["cache_max_mb"] * 2**20)))
                self._pool = ThreadPoolExecutor(self.settings["downloads"], thread_name_prefix=self.name)
            return self._client

    def ahead(self, items: Iterable[T], work: Callable[[T], object],
              wanted: Callable[[T], bool] = lambda _: True) -> Iterator[tuple[T, Future[Any] | None]]:
        """Each item with its ``work`` (for the ``wanted`` ones) running in the pool, up to ``2 * downloads``
        items ahead of the reader; what is still queued when the reader stops is cancelled."""
        self.client()
        assert self._pool is not None
        depth, queue = 2 * self.settings["downloads"], deque[tuple[T, Future[Any] | None]]()
        try:
            for item in items:
                queue.append((item, self._pool.submit(work, item) if wanted(item) else None))
                while len(queue) > depth:
                    yield queue.popleft()
            while queue:
                yield queue.popleft()
        finally:
            for _, future in queue:
                if future is not None:
                    future.cancel()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
            if self._client is not None:
                self._client.close()
            self._client = self._pool = None
