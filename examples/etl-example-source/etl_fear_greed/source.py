"""The ``fear_greed`` source: ``GET /fng/?limit=N&format=json`` from alternative.me.

The API has no time range, only ``limit`` (the newest N daily readings, newest first; 0 = all), so a
window is fetched as "enough days back from today" and cut to ``[start, end)``. Timestamps are unix
seconds sent as strings, one per UTC day; values are strings too. Errors come back as HTTP 200 with
``metadata.error`` set, which ``check_body`` turns into a permanent failure naming the message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import etl
from etl.timeframes import DAY, now_ms

DEFAULT_URL = "https://api.alternative.me"
SYMBOL = "crypto"
FIRST_READING_MS = 1_517_443_200_000  # 2018-02-01, the index's first day

SENTIMENT = etl.Dataset(
    "sentiment",
    (("source", "str"), ("symbol", "str"), ("ts", "ts"), ("value", "f64")),
    ("source", "symbol", "ts"),
    "a market-wide sentiment index reading; ts is the day it describes",
)


def _positive(value: float) -> None:
    if value <= 0:
        raise ValueError("must be positive")


class FearGreedSource(etl.Source):
    name = "fear_greed"
    datasets = ("sentiment",)
    network = True
    requires_symbols = False
    options = {
        "timeout": etl.Option(float, 15.0, help="seconds to wait for alternative.me", check=_positive),
    }

    def check(self) -> None:
        for symbol in self.config.symbols:
            if symbol != SYMBOL:
                raise etl.ConfigError(f"fear_greed has one symbol, {SYMBOL!r}; not {symbol!r}")

    def streams(self) -> list[etl.Stream]:
        return [etl.Stream("sentiment", symbol) for symbol in self.config.symbols or (SYMBOL,)]

    def row_interval_ms(self, stream: etl.Stream) -> int:
        return DAY

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[Any]:
        import polars as pl

        if end <= FIRST_READING_MS or start >= now_ms():
            return
        readings = now_ms() // DAY - max(start, FIRST_READING_MS) // DAY + 1  # from start's day to today
        body = self.client().get_json("/fng/", {"limit": readings, "format": "json"})
        rows = [
            {"ts": int(item["timestamp"]) * 1000, "value": float(item["value"]),
             "classification": item["value_classification"]}
            for item in body["data"]
        ]
        frame = pl.DataFrame(rows, schema={"ts": pl.Int64, "value": pl.Float64, "classification": pl.String})
        yield frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).unique("ts", keep="last").sort("ts")

    def client(self) -> Any:
        """One HTTP client per source, built on first use (``etl validate`` never builds it)."""
        if not hasattr(self, "_client"):
            from etl.http import HttpClient, rate_limiter

            self._client = HttpClient(
                self.base_url or DEFAULT_URL,
                limiter=rate_limiter("api.alternative.me", 60, 60),  # their published limit: 60 a minute
                timeout=self.settings["timeout"],
                check=check_body,
            )
        return self._client

    def close(self) -> None:
        if hasattr(self, "_client"):
            self._client.close()


def check_body(response: Any) -> None:
    """alternative.me reports errors inside an HTTP 200: ``{"data": [], "metadata": {"error": "..."}}``."""
    if response.status_code != 200:
        return
    try:
        error = json.loads(response.content).get("metadata", {}).get("error")
    except (ValueError, AttributeError):
        return  # not JSON: the client's own rules make it a transient failure
    if error:
        raise etl.PermanentError(f"fear_greed: alternative.me answered: {error}")
