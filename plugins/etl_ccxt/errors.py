"""ccxt's exceptions, sorted into what the runner understands: retried or fatal for the stream.

ccxt already reads each exchange's error bodies (Binance ``-1121``, Bybit ``retCode`` 10001 / 10006, HTTP
418 / 429 / 5xx) into its own classes. Everything under ``OperationFailed`` (NetworkError, RateLimitExceeded,
DDoSProtection, ExchangeNotAvailable, RequestTimeout, BadResponse) may work on a retry; everything under
``ExchangeError`` (BadSymbol, BadRequest, AuthenticationError, ...) will not, unless the HTTP status says
otherwise: a 429 or 5xx from a proxy, with a body the exchange's parser does not know, is still transient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from etl.errors import PermanentError, SourceError, TransientError, shorten
from etl.http import HOST_DOWN_STATUSES, RETRY_STATUSES, network_cause, retry_after_seconds


def etl_error(exc: Exception, what: str, status: int | None, response_headers: Mapping[str, Any] | None) -> SourceError:
    """The etl error for a ccxt exception raised while doing ``what``, given the HTTP status and headers of
    the last answer (None when there was none); Retry-After is kept for the backoff."""
    import ccxt

    message = f"{what}: {type(exc).__name__}: {_cause(exc, status)}"
    retry_status = status is not None and (status in RETRY_STATUSES or status >= 500)
    if isinstance(exc, ccxt.OperationFailed) or retry_status:
        retry_after = retry_after_seconds((response_headers or {}).get("Retry-After"))
        host_down = status in HOST_DOWN_STATUSES if status is not None else isinstance(exc, ccxt.NetworkError)
        return TransientError(message, retry_after, host_down=host_down)
    return PermanentError(message)



def _cause(exc: Exception, status: int | None) -> str:
    """Why, first: ccxt's own message of a network failure is only the exchange, method and URL, so the cause
    found below it (DNS failure, connection refused, ...) leads; an HTTP error leads with its status (errors
    inside HTTP 200, like Bybit's ``retCode``, are told by the exchange's message alone)."""
    said = shorten(str(exc), 300)
    cause = network_cause(exc)
    if cause is not None:
        return f"{cause.text}: {said}"
    return f"HTTP {status}: {said}" if status is not None and status >= 400 else said
