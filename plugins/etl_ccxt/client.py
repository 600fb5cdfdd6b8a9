"""One ccxt exchange for one source: every request sent to ``base_url``, metered, retried and classified.

- ``base_url`` replaces the scheme and host of every ``urls['api']`` entry (paths kept), so market metadata,
  the server clock and data all go to the same address (a proxy, a testnet, a local fake).
- ccxt's own throttle is off; every request ccxt sends, including the ones inside ``load_markets``, first
  takes its documented weight from the shared ``etl.http`` token buckets (``meter``), and its answer (or its
  failure) is shown to ``answered``, which reads the budget the exchange advertises and reports.
- ccxt's sync exchanges keep per-request state (the last response's headers carry Retry-After), so a
  request borrows an instance no other thread is using, and gives it back after: there are as many instances
  as requests ever ran at once, not one per thread (``etl stream`` has a thread per stream: 200 instances
  with their copies of 200 markets took 150 MB). Markets and the exchange's clock are read once per run, by
  the first request, under a lock, and the other instances share its tables (the same objects, not copies);
  a failure to load them is kept too, so the other streams fail with the same message instead of asking
  again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from etl.errors import SourceError
from etl.http import Circuit, retry_call
from etl.log import get_logger
from etl.timeframes import now_ms

from .errors import etl_error

if TYPE_CHECKING:
    from etl.http import RateLimiter

log = get_logger("etl_ccxt")
T = TypeVar("T")
Meter = Callable[[Any, Any, str, str, dict[str, Any], dict[str, Any]], None]
Answered = Callable[[Any, Any, str, str, dict[str, Any], dict[str, Any], Any], None]


class ExchangeClient:
    def __init__(
        self,
        exchange_id: str,
        *,
        base_url: str | None,
        options: dict[str, Any],
        meter: Meter,
        answered: Answered,
        limiter: RateLimiter,
        timeout: float,
        attempts: int,
        base_delay: float,
        time_params: Callable[[Any], dict[str, Any] | None],
    ):
        """``meter(exchange, api, method, path, params, config)`` acquires the weight of one request;
        ``answered(exchange, api, method, path, params, config, response)`` follows, response None when the
        request failed (the headers of the last answer are ``exchange.last_response_headers``); ``limiter``
        is paused by a Retry-After; ``time_params(exchange)`` gives the arguments of
        ``fetch_time``, or None where the exchange has no clock endpoint (the local clock is used)."""
        self.exchange_id = exchange_id
        self.base_url = base_url
        self.options = options
        self.meter = meter
        self.answered = answered
        self.limiter = limiter
        self.timeout = timeout
        self.attempts = attempts
        self.base_delay = base_delay
        self.time_params = time_params
        self.circuit = Circuit(urlsplit(base_url).netloc if base_url else exchange_id)
        self._lock = threading.Lock()
        self._exchanges: list[Any] = []
        self._idle: list[Any] = []  # instances no request is using
        self._markets: dict[str, Any] | None = None
        self._loaded: Any = None  # the exchange that loaded the markets: the others share its tables
        self._markets_by_id: dict[str, list[dict[str, Any]]] = {}
        self._clock_offset = 0
        self._failure: SourceError | None = None
        self._class: type | None = None

    # --- the exchange objects ---

    def _borrow(self) -> Any:
        """A ccxt exchange with markets loaded that no other request is using (``list.pop`` is atomic)."""
        try:
            return self._idle.pop()
        except IndexError:
            return self._loaded_exchange()

    def _loaded_exchange(self) -> Any:
        with self._lock:
            if self._failure is not None:
                raise self._failure
            exchange = self._new_exchange()
            if self._loaded is not None:
                exchange.set_markets_from_exchange(self._loaded)
                return exchange
            try:
                self._load(exchange)
            except SourceError as exc:
                self._failure = exc
                raise
            return exchange

    def _new_exchange(self) -> Any:
        import ccxt

        if self._class is None:
            self._class = _metered(getattr(ccxt, self.exchange_id), self.meter, self.answered)
        exchange = self._class({
            "enableRateLimit": False,
            "timeout": int(self.timeout * 1000),
            "has": {"fetchCurrencies": False},
            "options": self.options,
        })
        if self.base_url:
            _point_at(exchange.urls["api"], self.base_url)
        self._exchanges.append(exchange)
        return exchange

    def _load(self, exchange: Any) -> None:
        self._markets = self._retry(exchange, lambda ex: ex.load_markets(), f"{self.exchange_id} load markets")
        self._markets_by_id = exchange.markets_by_id
        self._loaded = exchange
        params = self.time_params(exchange)
        if params is None:
            return
        what = f"{self.exchange_id} server time"
        try:
            server = self._retry(exchange, lambda ex: ex.fetch_time(params), what)
        except SourceError as exc:
            log.warning("exchange clock unavailable, using the local clock", exchange=self.exchange_id,
                        error=str(exc))
            return
        if isinstance(server, int):
            # Measured after the answer arrived: the offset errs towards an earlier server clock, so a bar
            # is never taken for closed before the exchange itself closes it.
            self._clock_offset = server - now_ms()

    # --- what sources use ---

    def _ensure_loaded(self) -> None:
        """The first exchange built reads markets and clock: build it if no request has yet."""
        if self._loaded is None:
            self._give_back(self._borrow())

    def markets(self) -> dict[str, Any]:
        """Loaded markets by ccxt's unified symbol (``BTC/USDT``)."""
        self._ensure_loaded()
        return self._markets or {}

    def markets_by_id(self) -> dict[str, list[dict[str, Any]]]:
        """Loaded markets by the exchange's own id (``BTCUSDT``); one id can name several market types."""
        self._ensure_loaded()
        return self._markets_by_id

    def server_now(self) -> int:
        """Now on the exchange's clock (the local clock corrected by the offset measured at load)."""
        self._ensure_loaded()
        return now_ms() + self._clock_offset

    def call(self, function: Callable[[Any], T], what: str) -> T:
        """Run ``function(exchange)``, retrying transient failures; ``what`` names the request in errors."""
        exchange = self._borrow()
        try:
            return self._retry(exchange, function, what)
        finally:
            self._give_back(exchange)

    def _give_back(self, exchange: Any) -> None:
        self._idle.append(exchange)

    def close(self) -> None:
        """Close the exchanges' connections, without waiting for the lock: a request still building an exchange
        under it (importing ccxt, loading markets) when ``etl stream`` stopped is left behind and must not hold
        the exit (an exchange it adds later ends with the process)."""
        for exchange in list(self._exchanges):
            exchange.session.close()
        self._exchanges.clear()
        self._idle.clear()

    # --- retries and error mapping ---

    def _retry(self, exchange: Any, function: Callable[[Any], T], what: str) -> T:
        return retry_call(lambda: self._attempt(exchange, function, what), attempts=self.attempts,
                          base_delay=self.base_delay, limiter=self.limiter, describe=what, circuit=self.circuit)

    @staticmethod
    def _attempt(exchange: Any, function: Callable[[Any], T], what: str) -> T:
        import ccxt

        exchange.last_response_headers = exchange.last_status = None
        try:
            return function(exchange)
        except ccxt.BaseError as exc:
            raise etl_error(exc, what, exchange.last_status, exchange.last_response_headers) from None


def _point_at(urls: dict[str, Any], base_url: str) -> None:
    """Rewrite every URL of ccxt's ``urls['api']`` (nested tables included) to ``base_url`` + its path."""
    base = base_url.rstrip("/")
    for key, value in urls.items():
        if isinstance(value, dict):
            _point_at(value, base_url)
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            urls[key] = base + urlsplit(value).path


def _metered(cls: type, meter: Meter, answered: Answered) -> type:
    """A subclass of a ccxt exchange class whose every request first passes ``meter`` and then, answered or
    failed, ``answered``; which keeps the HTTP status of the last answer (``last_status``); and whose non-JSON
    answers (an HTML error page, an empty body) raise ccxt's BadResponse instead of reaching a parser."""
    import ccxt

    class Metered(cls):  # type: ignore[misc, valid-type]
        last_status: int | None = None

        def on_rest_response(self, code: int, *args: Any) -> Any:
            self.last_status = code
            return super().on_rest_response(code, *args)

        def fetch2(self, path: str, api: Any = "public", method: str = "GET", params: Any = None,
                   config: Any = None) -> Any:
            params, config = params if params is not None else {}, config if config is not None else {}
            meter(self, api, method, path, params, config)
            self.last_response_headers = response = None
            try:
                response = super().fetch2(path, api, method, params, config)
            finally:
                answered(self, api, method, path, params, config, response)
            if isinstance(response, str | bytes):
                text = response if isinstance(response, str) else response.decode(errors="replace")
                raise ccxt.BadResponse(f"{self.id} {method} {path}: the answer is not JSON: {text[:200]!r}")
            return response

    Metered.__name__ = Metered.__qualname__ = f"Metered{cls.__name__}"
    return Metered
