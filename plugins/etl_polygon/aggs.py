"""Polygon's aggregates answers: the request for a timeframe, the bars of a page, the errors sorted.

What an answer looks like (Polygon's REST docs and its Python client, ``polygon-api-client``)::

    {"ticker": "AAPL", "queryCount": 2, "resultsCount": 2, "adjusted": true, "status": "OK",
     "request_id": "6a7e466379af0a71039d60cc78e72282",
     "results": [{"v": 70790813, "vw": 131.6292, "o": 130.465, "c": 130.15, "h": 133.41, "l": 129.89,
                  "t": 1673240400000, "n": 645365}, ...],
     "next_url": "https://api.polygon.io/v2/aggs/ticker/AAPL/range/1/day/1673413200000/1678000000000?cursor=..."}

``status`` is ``OK``, or ``DELAYED`` when the plan sees delayed data (bars as good, only later); ``results`` is
absent when there are none. Errors are JSON with ``status`` (``ERROR``, ``NOT_AUTHORIZED``...), ``request_id``
and ``error`` or ``message``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from etl.errors import PermanentError, TransientError, shorten
from etl.timeframes import DAY

if TYPE_CHECKING:
    import polars as pl

# timeframe -> (multiplier, timespan): the project's grid in Polygon's words
TIMESPANS = {
    "1m": (1, "minute"), "2m": (2, "minute"), "3m": (3, "minute"), "5m": (5, "minute"), "15m": (15, "minute"),
    "30m": (30, "minute"), "1h": (1, "hour"), "2h": (2, "hour"), "4h": (4, "hour"), "6h": (6, "hour"),
    "8h": (8, "hour"), "12h": (12, "hour"), "1d": (1, "day"),
}
GOOD_STATUSES = ("OK", "DELAYED")
PAGE_LIMIT = 50_000  # Polygon's most base aggregates per request; the rest comes by next_url
COLUMNS = {"t": "ts", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume", "vw": "vwap", "n": "trades"}


def aggs_path(ticker: str, timeframe: str, start: int, end: int) -> str:
    """The aggregates path for ``[start, end)``: Polygon's ``to`` is inclusive, in epoch milliseconds too. Daily
    bars are asked for half a day wider on both sides: a stock's day is stamped hours after its UTC midnight
    (``page_bars`` moves it back), so the bar of the window's last day would otherwise fall outside ``to``."""
    from urllib.parse import quote

    multiplier, timespan = TIMESPANS[timeframe]
    pad = DAY // 2 if timespan == "day" else 0
    return f"/v2/aggs/ticker/{quote(ticker, safe=':')}/range/{multiplier}/{timespan}/{start - pad}/{end - 1 + pad}"


def page_bars(payload: Any, ticker: str, timeframe: str) -> pl.DataFrame:
    """The bars of one page, ``ts`` in epoch ms; a daily bar at 00:00 UTC of its date."""
    import polars as pl

    if not isinstance(payload, dict):
        raise TransientError(f"polygon: answer for {ticker} is not an aggregates object: {shorten(str(payload))}")
    status = payload.get("status")
    if status not in GOOD_STATUSES:
        raise PermanentError(f"polygon: {ticker}: status {status}: {vendor_words(payload)}")
    results = payload.get("results") or []
    schema = {"t": pl.Int64, **{key: pl.Float64 for key in ("o", "h", "l", "c", "v", "vw")}, "n": pl.Int64}
    frame = pl.DataFrame([{key: row.get(key) for key in schema} for row in results], schema=schema, orient="row")
    frame = frame.rename(COLUMNS)
    if timeframe == "1d":
        # Polygon stamps a stock's day at midnight New York time, a crypto day at midnight UTC: the nearest
        # UTC midnight is the date's start either way.
        frame = frame.with_columns((pl.col("ts") + DAY // 2) // DAY * DAY)
    return frame.sort("ts") if not frame["ts"].is_sorted() else frame


def vendor_words(payload: Any) -> str:
    """What Polygon said: its ``error`` or ``message``, and the ``request_id`` its support asks for."""
    if not isinstance(payload, dict):
        return shorten(str(payload))
    said = payload.get("error") or payload.get("message") or json.dumps(payload)
    request = payload.get("request_id")
    return f"{shorten(str(said))}" + (f" (request_id {request})" if request else "")


def check_answer(response: Any, pause: float) -> None:
    """Sort Polygon's refusals before the generic rules: a bad key (401), a plan without the data (403) and any
    other 4xx fail the stream at once with Polygon's words; 429 is retried after ``pause`` (Polygon sends no
    Retry-After)."""
    from etl.http import retry_after_seconds

    status = response.status_code
    if status < 400 or status >= 500:
        return
    try:
        said = vendor_words(response.json())
    except ValueError:
        said = shorten(response.text)
    if status == 429:
        after = retry_after_seconds(response.headers.get("Retry-After"))
        raise TransientError(f"polygon: HTTP 429: {said}", pause if after is None else after, host_down=True)
    if status == 401:
        raise PermanentError(f"polygon: HTTP 401, the API key was refused: {said}")
    raise PermanentError(f"polygon: HTTP {status}: {said}")  # 403: a plan without this data, in Polygon's words
