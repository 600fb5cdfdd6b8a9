"""HTTP for network sources: base URL, timeouts, retries with backoff, a shared rate limiter, and the
split between transient failures (retried) and permanent ones (the stream fails at once, clearly).

    client = HttpClient("https://api.binance.com", limiter=rate_limiter("api.binance.com", 6000, 60))
    rows = client.get_json("/api/v3/klines", {"symbol": "BTCUSDT", ...}, weight=2)

Sources built on another client library (ccxt, yfinance) use ``retry_call`` and ``RateLimiter`` directly.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from .errors import PermanentError, TransientError, shorten
from .log import get_logger
from .ratelimit import RateLimiter, rate_limiter

__all__ = ["Circuit", "HttpClient", "NetworkCause", "RateLimiter", "network_cause", "rate_limiter",
           "retry_after_seconds", "retry_call"]

T = TypeVar("T")
log = get_logger("etl.http")
RETRY_STATUSES = {408, 418, 425, 429, 500, 502, 503, 504, 520, 521, 522, 524}
# Answers about the host rather than the request: unavailable, a gateway without its origin, a rate limit, a ban.
HOST_DOWN_STATUSES = {418, 429, 502, 503, 504, 520, 521, 522, 524}
# Tries of a request whose host does not answer at all (no DNS, connection refused, no connection within the
# timeout): a second and a third try cover a proxy that restarts; more only delay a run without a network.
UNREACHABLE_ATTEMPTS = 3


class NetworkCause(NamedTuple):
    """Why a request got no HTTP answer, in words (``"DNS failure (Name or service not known)"``), and whether
    the host did not answer at all (``unreachable``) rather than dropped or stalled a conversation."""

    text: str
    unreachable: bool


# libcurl's error codes (curl_cffi, under yfinance) that say why a request got no answer.
CURL_CAUSES = {
    5: NetworkCause("DNS failure (proxy)", True),
    6: NetworkCause("DNS failure", True),
    7: NetworkCause("could not connect", True),
    28: NetworkCause("timed out", False),
    52: NetworkCause("connection closed before the answer", False),
    55: NetworkCause("connection reset or closed before the answer", False),
    56: NetworkCause("connection reset or closed before the answer", False),
}


def network_cause(exc: BaseException) -> NetworkCause | None:
    """The cause below HTTP of a failed request, found in the chain of exceptions that requests, urllib3 and
    ccxt wrap around the socket's error (their own messages say only "Max retries exceeded" or the URL), or
    in libcurl's error code; the most specific one when the chain holds several."""
    found = [cause for cause in map(_cause_of, _chain(exc)) if cause is not None]
    return min(found)[1] if found else None


def _cause_of(error: BaseException) -> tuple[int, NetworkCause] | None:
    """(rank, cause) of one exception of a chain; the lowest rank is the most specific."""
    import requests
    import urllib3

    if type(error).__module__.startswith("curl_cffi") and getattr(error, "code", 0) in CURL_CAUSES:
        return 0, CURL_CAUSES[error.code]  # type: ignore[attr-defined]
    if isinstance(error, socket.gaierror):
        return 1, NetworkCause(f"DNS failure ({error.strerror or error})", True)
    if isinstance(error, ConnectionRefusedError):
        return 2, NetworkCause("connection refused", True)
    if isinstance(error, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError):
        return 3, NetworkCause("timed out connecting", True)
    if isinstance(error, TimeoutError | requests.Timeout | urllib3.exceptions.TimeoutError):
        return 4, NetworkCause("timed out waiting for the answer", False)
    if isinstance(error, ConnectionError | urllib3.exceptions.ProtocolError):
        return 5, NetworkCause("connection reset or closed before the answer", False)
    return None


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or during (``raise ... from None`` included)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _unreachable(exc: BaseException | None) -> bool:
    cause = network_cause(exc) if isinstance(exc, TransientError) else None
    return cause is not None and cause.unreachable


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: seconds, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Circuit:
    """One host's health as a run sees it, shared by every stream's requests to it.

    Once a request has failed every retry (or the server asked for a longer pause than allowed) on a failure
    of the host (``TransientError.host_down``), the host is down for the rest of the run: later requests fail
    at once. Without this, each stream would spend its own minute of retries on an exchange under
    maintenance, and a cron run of 250 symbols would take hours instead of ending with every stream failed
    and its checkpoint kept for the next run. A request already under way that still succeeds brings the
    host back.
    """

    def __init__(self, host: str):
        self.host = host
        self.failure: str | None = None

    def check(self, describe: str) -> None:
        """Raise TransientError, without sending anything, while the host is down."""
        if self.failure is not None:
            raise TransientError(f"{describe}: not sent: {self.host} failed every retry earlier in this run "
                                 f"({self.failure})")

    def trip(self, error: TransientError) -> None:
        if self.failure is None:
            log.error("host down for the rest of this run", host=self.host, error=str(error))
        self.failure = str(error)

    def reset(self) -> None:
        self.failure = None


def retry_call(
    function: Callable[[], T],
    *,
    attempts: int = 8,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    limiter: RateLimiter | None = None,
    describe: str = "",
    max_retry_after: float = 300.0,
    circuit: Circuit | None = None,
) -> T:
    """Call ``function`` until it returns, retrying on TransientError with exponential backoff and jitter.

    A host that does not answer at all (``network_cause``: no DNS, connection refused) gets
    ``UNREACHABLE_ATTEMPTS`` tries, not ``attempts``: without a network, a run gives up in seconds, while a
    host that answers with 5xx or 429 keeps the patient retries.

    A TransientError's ``retry_after`` (from the server) is honoured as a floor for the pause, and also
    pauses ``limiter`` so every thread sharing it backs off together. A server asking for more than
    ``max_retry_after`` seconds (Binance's 418 bans last up to days) fails the call instead of sleeping.
    A call that fails for good on a failure of the host trips ``circuit``, so later calls to it fail at once,
    and calls retrying meanwhile stop at their next failure.
    """
    import tenacity

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = min(max_delay, base_delay * 2 ** (state.attempt_number - 1)) * (0.5 + random.random() / 2)
        after = getattr(exc, "retry_after", None)
        if after is not None and limiter is not None:
            limiter.pause(after)
        return max(backoff, after or 0.0)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("retrying", what=describe, attempt=state.attempt_number, error=str(exc),
                    wait=round(state.next_action.sleep if state.next_action else 0, 2))

    def retryable(exc: BaseException) -> bool:
        if not isinstance(exc, TransientError):
            return False
        if exc.retry_after is not None and exc.retry_after > max_retry_after:
            log.error("server asks to wait longer than allowed", what=describe, retry_after=exc.retry_after,
                      max_retry_after=max_retry_after)
            return False
        return True

    def stop(state: tenacity.RetryCallState) -> bool:
        if circuit is not None and circuit.failure is not None:
            return True  # another stream's request has failed every retry meanwhile
        exc = state.outcome.exception() if state.outcome else None
        return state.attempt_number >= (UNREACHABLE_ATTEMPTS if _unreachable(exc) else attempts)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(retryable),
        stop=stop,
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    if circuit is None:
        return retrying(function)
    circuit.check(describe)
    try:
        result = retrying(function)
    except TransientError as exc:
        if exc.host_down:
            circuit.trip(exc)
        raise
    circuit.reset()
    return result


class HttpClient:
    """A requests session bound to one base URL, with retries, rate limiting and error classification.

    ``check(response)`` lets a source turn exchange-specific bodies (an error code inside a 200) into
    TransientError or PermanentError before the generic rules apply.
    """

    def __init__(
        self,
        base_url: str,
        *,
        limiter: RateLimiter | None = None,
        timeout: float = 15.0,
        attempts: int = 8,
        base_delay: float = 0.5,
        headers: Mapping[str, str] | None = None,
        check: Callable[[Any], None] | None = None,
    ):
        import requests

        self.base_url = base_url.rstrip("/")
        self.circuit = Circuit(urlsplit(self.base_url).netloc or self.base_url)
        self.limiter = limiter
        self.timeout = timeout
        self.attempts = attempts
        self.base_delay = base_delay
        self.check = check
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": "market-etl", **(headers or {})})

    def request(self, method: str, path: str, *, weight: float = 1, **kwargs: Any) -> Any:
        """Send one request (retrying transient failures) and return the ``requests.Response``."""
        url = self._url(path)
        return retry_call(
            lambda: self._once(method, url, weight, kwargs),
            attempts=self.attempts,
            base_delay=self.base_delay,
            limiter=self.limiter,
            describe=f"{method} {url}",
            circuit=self.circuit,
        )

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, weight: float = 1) -> Any:
        return self._json("GET", path, weight, params=params)

    def post_json(self, path: str, body: Any, *, weight: float = 1) -> Any:
        return self._json("POST", path, weight, json=body)

    def _json(self, method: str, path: str, weight: float, **kwargs: Any) -> Any:
        url = self._url(path)

        def once() -> Any:
            return _decode(self._once(method, url, weight, kwargs), method, url)

        return retry_call(once, attempts=self.attempts, base_delay=self.base_delay, limiter=self.limiter,
                          describe=f"{method} {url}", circuit=self.circuit)

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def _once(self, method: str, url: str, weight: float, kwargs: dict[str, Any]) -> Any:
        import requests

        if self.limiter is not None:
            self.limiter.acquire(weight)
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            cause = network_cause(exc)
            said = cause.text if cause else f"{type(exc).__name__}: {shorten(str(exc))}"
            raise TransientError(f"{method} {url}: {said}", host_down=True) from None
        if self.check is not None:
            self.check(response)
        status = response.status_code
        if status in RETRY_STATUSES or status >= 500:
            raise TransientError(
                f"{method} {url}: HTTP {status}: {shorten(response.text)}",
                retry_after_seconds(response.headers.get("Retry-After")),
                host_down=status in HOST_DOWN_STATUSES,
            )
        if status >= 400:
            raise PermanentError(f"{method} {url}: HTTP {status}: {shorten(response.text)}")
        return response

    def close(self) -> None:
        self.session.close()


def _decode(response: Any, method: str, url: str) -> Any:
    """Parse JSON; a truncated or HTML body from a proxy is transient, not a parse crash."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise TransientError(f"{method} {url}: body is not valid JSON: {shorten(response.text)}") from None

