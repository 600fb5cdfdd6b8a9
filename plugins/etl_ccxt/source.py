"""The base of the exchange sources (``binance``, ``bybit``, ``ccxt``): what they do the same way.

A subclass says which ccxt exchange it drives (``exchange_id``), which market types its ``market`` option
offers (``market_types``), its rate limits (``budgets``) and the weight of each request (``request_cost``),
may follow what the exchange advertises and reports about its budget (``follow``), and implements
``fetch_<dataset>`` for the datasets it offers. This class builds the ccxt client once per source (one
source object serves every stream of a run), resolves symbols through the loaded markets, sends the
exchange's raw endpoints through ccxt's request path (so ccxt's error mapping applies), and drops bars the
exchange still considers open.
"""

from __future__ import annotations

import difflib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import etl
from etl.errors import ConfigError, PermanentError, TransientError
from etl.log import get_logger
from etl.options import positive
from etl.timeframes import HOUR, next_expr, timeframe_ms

from .budget import Budget

if TYPE_CHECKING:
    import polars as pl

    from etl.http import RateLimiter
    from etl.ratelimit import WindowCount

    from .client import ExchangeClient


log = get_logger("etl_ccxt")


def api_name(api: Any) -> str:
    """ccxt's name of an API section as one string: ``["fapiPublic"]`` -> ``"fapiPublic"``."""
    return "/".join(api) if isinstance(api, list | tuple) else str(api)


def is_list(answer: Any) -> bool:
    return isinstance(answer, list)


COMMON_OPTIONS: dict[str, etl.Option] = {
    "rate_limit": etl.Option(int, None, help="the exchange's rate limit to stay under, in its own unit (see the "
                             "source's docs); default: the documented limit. Lower it to leave room for other "
                             "clients on the same IP", check=positive),
    "timeout": etl.Option(float, 10.0, help="seconds to wait for an answer before retrying", check=positive),
    "retry_attempts": etl.Option(int, 8, help="attempts per request before the stream fails", check=positive),
    "retry_base_delay": etl.Option(float, 0.5, help="first pause between attempts in seconds, doubled each time "
                                   "(a Retry-After from the exchange is always honoured)", check=positive),
}


def market_status(market: dict[str, Any]) -> str:
    """``trading``, or the exchange's own word for an inactive market; ccxt's ``active`` None means not known."""
    if market.get("active") is not False:
        return "trading"
    return str((market.get("info") or {}).get("status") or "inactive").lower()


class ExchangeSource(etl.Source):
    network = True
    exchange_id: ClassVar[str]
    market_types: ClassVar[dict[str, str]] = {}
    derivative_markets: ClassVar[tuple[str, ...]] = ()
    funding_interval_ms: ClassVar[int] = 8 * HOUR

    def __init__(self, config: etl.SourceConfig):
        super().__init__(config)
        self._client: ExchangeClient | None = None
        self._client_lock = threading.Lock()
        self.spent: Counter[str] = Counter()  # weight taken per bucket, logged at close
        self.in_flight: Counter[str] = Counter()  # weight sent and not answered yet, per bucket
        self.limiters: dict[str, RateLimiter] = {}
        self.counts: dict[str, list[WindowCount]] = {}  # the exchange's own counts, where it reports them
        self._spent_lock = threading.Lock()

    # --- what subclasses describe ---

    @property
    def market(self) -> str:
        return self.settings["market"]

    def ccxt_options(self) -> dict[str, Any]:
        """ccxt ``options`` for the exchange: load only the market type this source reads."""
        return {"fetchMarkets": {"types": [self.market_types[self.market]]}}

    def budgets(self) -> dict[str, Budget]:
        """Rate limits by bucket name; the first is the main one, which a Retry-After pauses."""
        raise NotImplementedError

    def request_cost(self, exchange: Any, api: Any, method: str, path: str, params: dict[str, Any],
                     config: dict[str, Any]) -> tuple[tuple[str, float], ...]:
        """(bucket, weight) pairs one request costs; ``api`` and ``path`` as ccxt names them (``["fapiPublic"]``,
        ``"klines"``: see ``api_name``), ``config`` the endpoint's entry in ccxt's API table."""
        raise NotImplementedError

    def time_params(self, exchange: Any) -> dict[str, Any] | None:
        """Arguments of ccxt's ``fetch_time`` for this market, or None to trust the local clock."""
        return {}

    def follow(self, api: Any, path: str, response: Any, headers: Mapping[str, str]) -> None:
        """Read what an answer says about the budget (advertised limits, weight used, requests left) into
        ``self.limiters`` and ``self.counts``; ``response`` is None when the request failed. By default: nothing."""

    # --- checks ---

    def check(self) -> None:
        dataset = self.config.dataset
        if dataset in ("funding", "open_interest", "liquidations") and self.market not in self.derivative_markets:
            raise ConfigError(
                f"{self.name} dataset {dataset!r} needs a perpetual-futures market: set market to "
                f"{' or '.join(repr(m) for m in self.derivative_markets)} (it is {self.market!r})"
            )

    def row_interval_ms(self, stream: etl.Stream) -> int:
        if stream.dataset == "open_interest":
            return timeframe_ms(self.settings["period"])
        if stream.dataset == "funding":
            return self.funding_interval_ms
        return super().row_interval_ms(stream)

    # --- the client ---

    @property
    def client(self) -> ExchangeClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> ExchangeClient:
        from .client import ExchangeClient

        where = self.base_url or "default"
        self.limiters = {
            bucket: budget.limiter(f"{self.name} {bucket} {where}") for bucket, budget in self.budgets().items()
        }

        def meter(exchange: Any, api: Any, method: str, path: str, params: dict[str, Any],
                  config: dict[str, Any]) -> None:
            for bucket, weight in self.request_cost(exchange, api, method, path, params, config):
                self.limiters[bucket].acquire(weight)
                for count in self.counts.get(bucket, ()):
                    count.acquire(weight)
                with self._spent_lock:
                    self.spent[bucket] += weight
                    self.in_flight[bucket] += weight

        def answered(exchange: Any, api: Any, method: str, path: str, params: dict[str, Any],
                     config: dict[str, Any], response: Any) -> None:
            with self._spent_lock:
                self.in_flight.subtract(dict(self.request_cost(exchange, api, method, path, params, config)))
            self.follow(api, path, response, exchange.last_response_headers or {})

        return ExchangeClient(
            self.exchange_id,
            base_url=self.base_url,
            options=self.ccxt_options(),
            meter=meter,
            answered=answered,
            limiter=next(iter(self.limiters.values())),
            timeout=self.settings["timeout"],
            attempts=self.settings["retry_attempts"],
            base_delay=self.settings["retry_base_delay"],
            time_params=self.time_params,
        )

    def unanswered(self, bucket: str) -> float:
        """Weight of ``bucket`` sent and not answered yet: what the exchange's last count may lack."""
        with self._spent_lock:
            return self.in_flight[bucket]

    def close(self) -> None:
        """Close the connections and log how much of each rate limit the run used."""
        if self._client is not None:
            self._client.close()
        if self.spent:
            waited = {f"{bucket}_waited_s": round(self.limiters[bucket].waited, 1) for bucket in self.spent}
            log.info("rate limit use", source=self.name, market=self.market, **self.spent, **waited)

    # --- symbol selectors ---

    def list_symbols(self, volumes: bool = False) -> list[etl.Listing]:
        """The exchange's ids of this source's market type, from the markets every run loads anyway: ccxt's
        ``active`` is ``trading``, an inactive market shows the exchange's own status (Binance ``break``, Bybit
        ``closed``). ``volumes`` adds one request of the 24h tickers of the whole market type (ccxt's
        ``fetch_tickers``: Binance weight 80 on spot, 40 on USD-M)."""
        listed = {market_id: market for market_id, markets in sorted(self.client.markets_by_id().items())
                  for market in markets[:1] if self.lists(market)}
        ranked = self.quote_volumes(next(iter(listed.values()))) if volumes and listed else {}
        return [etl.Listing(market_id, market_status(market), ranked.get(market_id))
                for market_id, market in listed.items()]

    def lists(self, market: dict[str, Any]) -> bool:
        """Whether a loaded market is one of this source's (only its market type is loaded, by default)."""
        return True

    def quote_volumes(self, sample: dict[str, Any]) -> dict[str, float]:
        """Each market's 24h quote volume by id, from one ``fetch_tickers`` of ``sample``'s market type."""
        what = f"{self.name} {self.market} 24h tickers"
        kind = {"type": sample.get("type"), **({"subType": sample["subType"]} if sample.get("subType") else {})}
        tickers = self.client.call(lambda exchange: exchange.fetch_tickers(None, kind), what)
        markets = self.client.markets()
        return {markets[symbol]["id"]: float(ticker["quoteVolume"]) for symbol, ticker in tickers.items()
                if symbol in markets and ticker.get("quoteVolume") is not None}

    # --- fetching ---

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        if stream.dataset in self.live_only:
            raise PermanentError(f"{self.name} serves no {stream.dataset} history: follow it live with etl stream")
        market = self.resolve(stream.symbol)
        fetcher = getattr(self, f"fetch_{stream.dataset}")
        yield from fetcher(stream, market, start, end)

    def resolve(self, symbol: str) -> dict[str, Any]:
        """The loaded ccxt market of ``symbol`` (the exchange's own id); PermanentError naming it if unknown."""
        found = self.client.markets_by_id().get(symbol) or []
        if found:
            return found[0]
        known = sorted(self.client.markets_by_id())
        close = difflib.get_close_matches(symbol, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise PermanentError(
            f"{self.name}: unknown symbol {symbol!r} on the {self.market} market "
            f"({len(known)} symbols listed by the exchange){hint}"
        )

    def request(self, stream: etl.Stream, method: str, params: dict[str, Any],
                valid: Callable[[Any], bool] = is_list) -> Any:
        """One call of a raw ccxt endpoint (``publicGetKlines``), retried; errors name the stream.

        An answer that is not ``valid`` (a proxy's page, an object of the wrong shape) is retried like a timeout.
        """
        what = f"{self.name} {stream.label} ({method})"

        def send(exchange: Any) -> Any:
            answer = getattr(exchange, method)(params)
            if not valid(answer):
                raise TransientError(f"{what}: unexpected answer: {str(answer)[:200]}")
            return answer

        return self.client.call(send, what)

    def asked_at(self) -> int:
        """The exchange's time now: take it just before a request, to pass to ``closed_bars``."""
        return self.client.server_now()

    def closed_bars(self, stream: etl.Stream, frame: pl.DataFrame, asked_at: int) -> pl.DataFrame:
        """Drop bars that may still have been open when the exchange answered (it answered after ``asked_at``);
        the run summary counts them as ``open bars deferred``: the next run stores them, closed.

        The runner stops windows at the last bar closed on the local clock; when that clock runs ahead of
        the exchange's, the exchange still serves that bar as open (partial volume, last price as close).
        """
        import polars as pl

        closed = frame.filter(next_expr(pl.col("ts"), stream.timeframe or "") <= asked_at)
        self.count(stream, "open_bars_deferred", frame.height - closed.height)
        return closed

