"""Yahoo's chart API through yfinance's own HTTP layer, paced, retried, and with errors sorted.

yfinance's ``YfData`` does the part of talking to Yahoo that keeps breaking: the cookie and crumb
dance, the consent fallback, switching cookie strategy when a request is refused. That is what this
module borrows. It does not use ``Ticker.history``: history rewrites the raw answer (dates instead of
timestamps for daily bars, all-null rows silently dropped, a live row merged into the last bar), and
those raw details are what the source needs to drop the live bar and count the null rows itself.

``YfData`` is a process-wide singleton holding one session and one crumb, so requests take turns
under a lock; Yahoo's throttling allows little parallelism anyway.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote, urlsplit

from etl.errors import PermanentError, TransientError, shorten
from etl.http import HOST_DOWN_STATUSES, Circuit, rate_limiter, retry_call

CHART_URL = "https://query2.finance.yahoo.com/v8/finance/chart/{symbol}"
# Yahoo sends no Retry-After with its 429; every stream sharing the limiter backs off at least this long.
RATE_LIMITED_PAUSE = 2.0
ATTEMPTS = 6
BASE_DELAY = 1.0

_turns = threading.Lock()


class ChartClient:
    """Fetches chart results for one Yahoo address (the real hosts, or ``base_url``)."""

    def __init__(self, base_url: str | None, requests_per_minute: int, timeout: float):
        from .session import RedirectingSession

        self.session = RedirectingSession(base_url)
        self.timeout = timeout
        host = urlsplit(base_url).netloc if base_url else "finance.yahoo.com"
        burst = max(1, requests_per_minute // 6)
        self.limiter = rate_limiter(f"yahoo {host}", burst, burst * 60 / requests_per_minute)
        self.circuit = Circuit(host)

    def chart(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> dict[str, Any]:
        """The chart result (``meta``, ``timestamp``, ``indicators``, ``events``) for ``[start, end)``."""
        params = {
            "period1": start_ms // 1000,
            "period2": -(-end_ms // 1000),
            "interval": interval,
            "includePrePost": "false",
            "events": "div,splits,capitalGains",
        }
        return retry_call(
            lambda: self._chart_once(symbol, params),
            attempts=ATTEMPTS,
            base_delay=BASE_DELAY,
            limiter=self.limiter,
            describe=f"yahoo chart {symbol} {interval}",
            circuit=self.circuit,
        )

    def _chart_once(self, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        from yfinance.data import YfData
        from yfinance.exceptions import YFRateLimitError

        url = CHART_URL.format(symbol=quote(symbol.upper(), safe=""))
        self.limiter.acquire()
        with _turns:
            try:
                response = YfData(session=self.session).get(url, params=params, timeout=self.timeout)
            except YFRateLimitError:
                raise TransientError(f"yahoo: rate limited (HTTP 429) fetching {symbol}", RATE_LIMITED_PAUSE,
                                     host_down=True) from None
            except OSError as exc:
                raise TransientError(f"yahoo: {type(exc).__name__} fetching {symbol}: {exc}", host_down=True) from None
        return chart_result(symbol, response.status_code, response.text)

    def close(self) -> None:
        self.session.close()


def chart_result(symbol: str, status: int, body: str) -> dict[str, Any]:
    """Sort a chart answer: the result, or a TransientError (retry) or PermanentError (give up) naming the symbol."""
    if status >= 500:
        raise TransientError(f"yahoo: HTTP {status} fetching {symbol}: {shorten(body)}",
                             host_down=status in HOST_DOWN_STATUSES)
    try:
        payload = json.loads(body)
        chart = payload["chart"]
    except (ValueError, KeyError, TypeError):
        if status >= 400:
            raise PermanentError(f"yahoo: HTTP {status} fetching {symbol}: {shorten(body)}") from None
        raise TransientError(f"yahoo: answer for {symbol} is not a chart: {shorten(body)}") from None
    error = chart.get("error")
    if error:
        reason = f"{error.get('code')}: {error.get('description')}"
        if status == 404 or error.get("code") == "Not Found":
            raise PermanentError(f"yahoo: unknown symbol {symbol!r} ({reason})")
        raise PermanentError(f"yahoo: refused {symbol} (HTTP {status}, {reason})")
    if status >= 400 or not chart.get("result"):
        raise PermanentError(f"yahoo: HTTP {status} without a chart result for {symbol}: {shorten(body)}")
    return chart["result"][0]
