"""The probe source: pages candles from the probe exchange through etl.http.HttpClient."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import etl
from etl.timeframes import now_ms, timeframe_ms

SOURCE_DEFECTS = (
    "none", "unsorted", "duplicates", "open_candle", "inconsistent", "end_inclusive", "seconds", "naive",
    "unstable", "off_grid", "hole", "validate_network", "no_retry",
)


class ProbeSource(etl.Source):
    name = "probe"
    network = True
    timeframes = ("1m", "1h", "1d")
    options = {
        "defect": etl.Option(str, "none", choices=SOURCE_DEFECTS, help="the contract to break"),
        "page": etl.Option(int, 50, help="candles per request"),
    }

    def check(self) -> None:
        if self.settings["defect"] == "validate_network":
            import requests

            requests.get(f"{self.base_url}/ping", timeout=5)

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[Any]:
        import polars as pl

        defect = self.settings["defect"]
        step = timeframe_ms(stream.timeframe)
        closed = now_ms() if defect == "open_candle" else now_ms() - step
        cursor = start + step if defect == "hole" else start
        stop = end + 1 if defect == "end_inclusive" else end
        first_page = True
        while cursor < stop:
            params = {"symbol": stream.symbol, "interval": stream.timeframe, "start": cursor, "end": stop,
                      "limit": self.settings["page"]}
            if defect == "duplicates" and not first_page:
                params["start"] = cursor - step
            rows = self._get(params)
            if not rows:
                return
            cursor, first_page = int(rows[-1][0]) + step, False
            frame = pl.DataFrame(rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row")
            frame = frame.with_columns(pl.col("ts").cast(pl.Int64)).filter(pl.col("ts") <= closed)
            yield self._break(frame, defect)

    def _get(self, params: dict[str, Any]) -> Any:
        if self.settings["defect"] == "no_retry":
            import requests

            response = requests.get(f"{self.base_url}/candles", params=params, timeout=5)
            if response.status_code != 200:
                raise etl.PermanentError(f"probe: HTTP {response.status_code} for {params['symbol']}")
            return response.json()
        if not hasattr(self, "client"):
            from etl.http import HttpClient

            self.client = HttpClient(self.base_url, base_delay=0.02, attempts=5)
        return self.client.get_json("/candles", params)

    def _break(self, frame: Any, defect: str) -> Any:
        import polars as pl

        if defect == "unsorted":
            return frame.reverse()
        if defect == "inconsistent":
            return frame.with_columns(pl.min_horizontal("open", "close").alias("high") - 1)
        if defect == "seconds":
            return frame.with_columns(pl.col("ts") // 1000)
        if defect == "naive":
            return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms")))
        if defect == "unstable":
            return frame.with_columns(pl.col("volume") + random.random())
        if defect == "off_grid":
            return frame.with_columns(pl.col("ts") + 60_000)
        return frame

    def close(self) -> None:
        if hasattr(self, "client"):
            self.client.close()
