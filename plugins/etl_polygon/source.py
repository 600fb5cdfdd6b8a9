"""The ``polygon`` source: aggregate bars from Polygon.io, paced to the plan's requests per minute."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import etl
from etl.options import positive

from .aggs import PAGE_LIMIT, TIMESPANS, aggs_path, check_answer, page_bars

if TYPE_CHECKING:
    import polars as pl

    from etl.http import HttpClient

DEFAULT_URL = "https://api.polygon.io"


class PolygonSource(etl.Source):
    name = "polygon"
    datasets = ("ohlcv",)
    timeframes = tuple(TIMESPANS)
    network = True
    options = {
        "api_key": etl.Option(str, help="your Polygon API key; write api_key = \"${POLYGON_API_KEY}\" so it stays "
                                        "in the environment", secret=True),
        "adjusted": etl.Option(bool, True, help="prices adjusted for splits (Polygon's default); false: as traded"),
        "requests_per_minute": etl.Option(int, 5, help="requests sent per minute, evenly spaced: 5 is the free "
                                                       "tier's budget; raise it on a paid plan", check=positive),
        "timeout": etl.Option(float, 30.0, help="seconds to wait for one Polygon answer", check=positive),
    }

    def __init__(self, config: etl.SourceConfig):
        super().__init__(config)
        self._client: HttpClient | None = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> HttpClient:
        """One session per source: every stream shares its host's budget and circuit."""
        with self._client_lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> HttpClient:
        from etl.http import HttpClient, rate_limiter

        base_url = self.base_url or DEFAULT_URL
        per_minute = self.settings["requests_per_minute"]
        spacing = 60 / per_minute  # one request at a time, never a burst: the free tier counts 5 in any minute
        limiter = rate_limiter(f"polygon {urlsplit(base_url).netloc}", 1, spacing)
        return HttpClient(base_url, limiter=limiter, timeout=self.settings["timeout"],
                          headers={"Authorization": f"Bearer {self.settings['api_key']}"},
                          check=lambda response: check_answer(response, spacing))

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        import polars as pl

        from etl.timeframes import next_expr, now_ms

        timeframe, now = stream.timeframe or "", now_ms()
        end = min(end, now)
        if end <= start:
            return
        closed = pl.col("ts").is_between(start, end, closed="left") & (next_expr(pl.col("ts"), timeframe) <= now)
        params = {"adjusted": str(self.settings["adjusted"]).lower(), "sort": "asc", "limit": PAGE_LIMIT}
        page = self.client.get_json(aggs_path(stream.symbol, timeframe, start, end), params)
        while True:
            bars = page_bars(page, stream.symbol, timeframe)
            yield bars.filter(closed)
            next_url = page.get("next_url")
            if not next_url:
                return
            page = self.client.get_json(_on_base(next_url))

    def plan(self, stream: etl.Stream, start: int, end: int) -> Iterator[str]:
        from etl.timeframes import iso

        multiplier, timespan = TIMESPANS[stream.timeframe or ""]
        yield (f"{stream.label}: aggregates {multiplier} {timespan} {iso(start)} .. {iso(end)}, pages of up to "
               f"{PAGE_LIMIT} bars, at most {self.settings['requests_per_minute']} requests a minute")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _on_base(next_url: str) -> str:
    """``next_url`` as a path and query, sent to the source's own ``base_url`` (a proxy, the tests' fake)
    rather than the host Polygon wrote into it."""
    parts = urlsplit(next_url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
