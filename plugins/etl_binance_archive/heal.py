"""Spans the archive cannot give, read through the ``binance`` source's own code (same rows, same paging,
same rate limits), pointed at ``rest_url``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import etl

if TYPE_CHECKING:
    import polars as pl


class Rest:
    """The registered ``binance`` source for one market, built on first use."""

    def __init__(self, config: etl.SourceConfig, market: str, rest_url: str | None):
        self.config = config
        # period: open interest as the archive's metrics files have it, every 5 minutes
        self.settings = {"market": market, "period": "5m", **({"base_url": rest_url} if rest_url else {})}
        self._source: etl.Source | None = None
        self._lock = threading.Lock()

    def source(self) -> etl.Source:
        from etl.plugins import registry

        with self._lock:
            if self._source is None:
                config = replace(self.config, plugin="binance", settings=self.settings, start=None, end=None)
                self._source = registry().get("source", "binance")(config)
            return self._source

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        yield from self.source().fetch(stream, start, end)

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
