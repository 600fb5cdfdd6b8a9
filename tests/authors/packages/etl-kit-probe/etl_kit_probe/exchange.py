"""A tiny candle API for the probe source, served by ``etl.testing.FakeServer``.

``GET /candles?symbol=&interval=&start=&end=&limit=`` returns ``[[ts_ms, open, high, low, close,
volume], ...]`` ascending, like most exchanges, including the candle still forming at the current
time. Candles are a pure function of (symbol, interval, ts). Unknown symbols get HTTP 400.
"""

from __future__ import annotations

import zlib

from etl.testing import Reply, Request
from etl.timeframes import ceil_ts, floor_ts, now_ms, timeframe_ms

SYMBOLS = {"BTC-USD", "ETH-USD"}


def candle(symbol: str, interval: str, ts: int) -> list[float]:
    seed = zlib.crc32(f"{symbol}/{interval}/{ts}".encode())
    base = 100.0 + (zlib.crc32(symbol.encode()) % 1000) + (ts // 3_600_000) % 97
    open_, close = base + (seed % 1000) / 100, base + ((seed >> 10) % 1000) / 100
    high = max(open_, close) + ((seed >> 20) % 100) / 100
    low = min(open_, close) - ((seed >> 4) % 100) / 100
    return [ts, open_, high, low, close, float(seed % 10_000)]


def handle(request: Request) -> Reply:
    if request.path == "/ping":
        return Reply.json({"pong": True})
    query = request.query
    symbol, interval = query["symbol"], query["interval"]
    if symbol not in SYMBOLS:
        return Reply.json({"error": f"unknown symbol {symbol}"}, 400)
    step = timeframe_ms(interval)
    last_open = floor_ts(now_ms(), interval)
    start, end = ceil_ts(int(query["start"]), interval), min(int(query["end"]), last_open + step)
    limit = int(query.get("limit", 500))
    return Reply.json([candle(symbol, interval, ts) for ts in range(start, end, step)][:limit])
