"""Deterministic candles for any symbol and timeframe, shipped the way a third party ships a plugin.

Each candle is a pure function of (symbol, timeframe, ts), so a test can compute what must have landed.
``delay`` slows every page (to hold a lock open), ``fail`` names symbols that fail permanently.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from typing import Any

import etl
from etl.timeframes import ceil_ts, timeframe_ms


def candle(symbol: str, timeframe: str, ts: int) -> dict[str, Any]:
    seed = zlib.crc32(f"{symbol}/{timeframe}/{ts}".encode())
    base = 100.0 + (zlib.crc32(symbol.encode()) % 1000) + (ts // 3_600_000) % 97
    open_ = base + (seed % 1000) / 100
    close = base + ((seed >> 10) % 1000) / 100
    return {
        "ts": ts,
        "open": open_,
        "high": max(open_, close) + ((seed >> 20) % 100) / 100,
        "low": min(open_, close) - ((seed >> 4) % 100) / 100,
        "close": close,
        "volume": float(seed % 10_000),
        "trades": seed % 500,
    }


class SyntheticSource(etl.Source):
    name = "synthetic"
    datasets = ("ohlcv",)
    options = {
        "page": etl.Option(int, 500, help="candles per page"),
        "delay": etl.Option(float, 0.0, help="seconds to sleep before each page"),
        "fail": etl.Option(list, [], item_type=str, help="symbols that fail with a permanent error"),
    }

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[Any]:
        import polars as pl

        if stream.symbol in self.settings["fail"]:
            raise etl.PermanentError(f"synthetic: unknown symbol {stream.symbol!r}")
        step = timeframe_ms(stream.timeframe)
        ts = ceil_ts(start, stream.timeframe)
        page = self.settings["page"]
        while ts < end:
            if self.settings["delay"]:
                time.sleep(self.settings["delay"])
            stop = min(end, ts + page * step)
            rows = [candle(stream.symbol, stream.timeframe, t) for t in range(ts, stop, step)]
            yield pl.DataFrame(rows)
            ts = stop


@etl.hookimpl
def register_sources(register):
    register(SyntheticSource)
