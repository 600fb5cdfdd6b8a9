"""Binance's websocket market streams for ``etl stream``: closed klines, aggregate trades and (USD-M)
liquidations, read straight from the venue's frames.

A direct client rather than ccxt.pro: ccxt.pro's ``watch_ohlcv`` hands back candles without the kline's
closed flag ``x`` (wire-formats-2 A.4), so it cannot tell a finished bar from a forming one, and it reconnects
on its own schedule, hiding the moments a REST heal must follow. Here the core owns the connection
(``etl.live``); this module only says where to connect and reads a frame.

- Combined streams, ``/stream?streams=btcusdt@kline_1m/...`` (spot) and ``/market/stream?streams=...``
  (USD-M, whose stream URLs were split by category in 2026: klines live under ``/market``), at most 200
  streams per connection (USD-M's documented limit is unconfirmed between 200 and 1024).
- A kline frame is stored only when ``x`` is true; its fields are the REST kline's, so a live bar and the same
  bar from ``/api/v3/klines`` are one row (the REST row layout is rebuilt and parsed by the same code).
- ``trades``: ``<symbol>@aggTrade``, one trade a message. Its keys are the REST ``aggTrades`` object's, so the
  records go, many messages at once, through the REST code (``source.trades_frame``): a live trade and the same
  trade from REST are one row. Aggregate ids are consecutive, so a jump is a hole the core heals from REST
  (``live_sequence``).
- ``liquidations`` (USD-M): ``<symbol>@forceOrder``, at most one order a symbol a second. No REST serves their
  history: the core records the window a connection was away as a gap. ``side`` is the liquidation order's
  (``SELL`` closes a long), ``price`` the order's, ``size`` its quantity, ``ts`` its trade time.
- Binance acknowledges a stream of an unknown symbol and then stays silent: the REST heal that starts every
  stream names the unknown symbol and fails that stream alone (liquidations have no REST: their stream of an
  unknown symbol stays silent).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from etl_ccxt.frames import rows_to_frame

import etl
from etl.live import LiveRejected, Subscription, websocket_of

if TYPE_CHECKING:
    import polars as pl

STREAMS_PER_CONNECTION = 200
DEFAULT_URLS = {"spot": "wss://data-stream.binance.vision", "usdm": "wss://fstream.binance.com/market"}
KLINE_KEYS = ("t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q", "B")  # the REST kline row's order


def websocket_base(settings: dict[str, Any], market: str) -> str:
    """``ws_url``; else ``base_url`` with ``http`` -> ``ws`` and the venue's path; else Binance's own host."""
    if settings.get("ws_url"):
        return settings["ws_url"].rstrip("/")
    if settings.get("base_url"):
        return websocket_of(settings["base_url"]) + ("/market" if market == "usdm" else "")
    return DEFAULT_URLS[market]


STREAM_KINDS = {"trades": "aggTrade", "liquidations": "forceOrder"}


def stream_name(stream: etl.Stream) -> str:
    if stream.dataset == "ohlcv":
        return f"{stream.symbol.lower()}@kline_{stream.timeframe}"
    return f"{stream.symbol.lower()}@{STREAM_KINDS[stream.dataset]}"


def subscriptions(settings: dict[str, Any], market: str, streams: list[etl.Stream]) -> list[Subscription]:
    """Combined-stream connections of at most 200 streams each."""
    base = websocket_base(settings, market)
    chunks = [streams[index:index + STREAMS_PER_CONNECTION] for index in range(0, len(streams),
                                                                                 STREAMS_PER_CONNECTION)]
    return [Subscription(f"{base}/stream?streams={'/'.join(stream_name(stream) for stream in chunk)}", tuple(chunk),
                         silence_seconds=settings.get("ws_silence") or 60.0) for chunk in chunks]


def parse(message: str | bytes, subscription: Subscription) -> Iterable[tuple[etl.Stream, Any]]:
    """A frame's closed kline (a frame), aggregate trade or liquidation (a record, for ``live_frame``); nothing
    for forming bars, acks and other events."""
    frame = json.loads(message)
    if isinstance(frame, dict) and "error" in frame:
        error = frame["error"]
        reason = error.get("msg", error) if isinstance(error, dict) else error
        raise LiveRejected(subscription.streams, f"binance refused the subscription: {reason}")
    data = frame.get("data", frame) if isinstance(frame, dict) else None
    event = data.get("e") if isinstance(data, dict) else None
    if event == "aggTrade":
        stream = _streams(subscription).get(("trades", data["s"].upper(), None))
        return ((stream, [data]),) if stream else ()
    if event == "forceOrder":
        stream = _streams(subscription).get(("liquidations", data["o"]["s"].upper(), None))
        return ((stream, [data["o"]]),) if stream else ()
    if event != "kline" or not data["k"].get("x"):
        return ()
    kline = data["k"]
    stream = _streams(subscription).get(("ohlcv", kline["s"].upper(), kline["i"]))
    if stream is None:
        return ()
    from .source import KLINE_FIELDS

    return ((stream, rows_to_frame([[kline[key] for key in KLINE_KEYS]], KLINE_FIELDS)),)


def frame(stream: etl.Stream, records: list[dict[str, Any]]) -> pl.DataFrame:
    """Records ``parse`` gave, as rows: aggregate trades by the REST code, liquidation orders (``o``)."""
    from .source import trades_frame

    return trades_frame(records) if stream.dataset == "trades" else liquidations_frame(records)


def liquidations_frame(orders: list[dict[str, Any]]) -> pl.DataFrame:
    """``forceOrder`` orders: the order's side, price and quantity at its trade time."""
    import polars as pl

    raw = pl.from_dicts(orders, schema={"T": pl.Int64, "S": pl.String, "p": pl.String, "q": pl.String})
    return raw.select(pl.col("T").alias("ts"), pl.col("S").str.to_lowercase().alias("side"),
                      pl.col("p").cast(pl.Float64).alias("price"), pl.col("q").cast(pl.Float64).alias("size"))


@cache
def _streams(subscription: Subscription) -> dict[tuple[str, str, str | None], etl.Stream]:
    return {(stream.dataset, stream.symbol.upper(), stream.timeframe): stream for stream in subscription.streams}
