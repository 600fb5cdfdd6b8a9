"""The HTTP session handed to yfinance: Chrome's TLS fingerprint, and ``base_url`` redirection.

yfinance calls Yahoo on several hard-coded hosts: the chart API on query2.finance.yahoo.com, the
cookie on fc.yahoo.com (or guce.yahoo.com / consent.yahoo.com), the crumb on query1 or query2. Those
URLs are string literals and by-value constant imports inside yfinance, so patching them is fragile.
Instead every request yfinance makes goes through this session, which sends any ``*.yahoo.com`` URL
to one address with the host kept as the first path segment::

    https://query2.finance.yahoo.com/v8/finance/chart/AAPL?interval=1d
    -> {base_url}/query2.finance.yahoo.com/v8/finance/chart/AAPL?interval=1d

so a test server or a reverse proxy can tell the hosts apart. Without ``base_url`` URLs are untouched.

The session is a curl_cffi one impersonating Chrome, as yfinance's own default is: Yahoo throttles or
blocks clients whose TLS handshake does not look like a browser's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from curl_cffi import requests as curl_requests

YAHOO_DOMAIN = "yahoo.com"


def redirect(url: str, base_url: str) -> str:
    """Where ``url`` goes when every Yahoo host is served under ``base_url``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host != YAHOO_DOMAIN and not host.endswith("." + YAHOO_DOMAIN):
        return url
    target = urlsplit(base_url.rstrip("/"))
    path = f"{target.path}/{host}{parts.path or '/'}"
    return urlunsplit((target.scheme, target.netloc, path, parts.query, parts.fragment))


class RedirectingSession(curl_requests.Session):
    """A Chrome-impersonating session that sends every Yahoo host to ``base_url`` when one is set."""

    def __init__(self, base_url: str | None = None):
        super().__init__(impersonate="chrome")
        self.redirect_to = base_url

    def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        if self.redirect_to:
            url = redirect(url, self.redirect_to)
        return super().request(method, url, *args, **kwargs)
