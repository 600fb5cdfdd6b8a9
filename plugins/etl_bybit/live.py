"""Bybit's v5 public websocket streams for ``etl stream``: closed klines of spot, linear and inverse markets,
trades of every market, liquidations of linear and inverse ones.

A direct client, as for Binance (ccxt.pro hides the ``confirm`` flag); the core owns the connection
(``etl.live``), this module says where to connect and reads a frame (``../shared/wire-formats-2.md`` A.2).

- One endpoint per market, ``/v5/public/spot|linear|inverse``; topics ``kline.<interval>.<symbol>``, subscribed
  by ``{"op": "subscribe", "args": [...]}`` requests of at most 10 args (spot's limit, harmless elsewhere), at
  most 200 topics per connection (the args of one connection must stay under 21,000 characters).
- Bybit wants a JSON ping, ``{"op": "ping"}``, every 20 seconds; its pong counts as a frame, so a quiet symbol
  does not make the connection look silent.
- A kline frame is stored only when ``confirm`` is true; its fields are the REST kline's, so a live bar and the
  same bar from ``/v5/market/kline`` are one row (the REST row is rebuilt and parsed by the same code).
- ``trades``: ``publicTrade.<symbol>``, a frame's ``data`` a list of trades (``i`` the trade id, ``S`` the
  taker's side). ``liquidations``: ``allLiquidation.<symbol>`` (linear, inverse), every liquidation, pushed
  every 500 ms; ``S`` is the side of the position liquidated (``Buy``: a long), so ``side`` is the order that
  closed it (``sell``), as Binance's ``forceOrder`` says it. Neither has a REST history to heal from: Bybit's
  ``recent-trade`` gives only the last 1000 trades (60 on spot), a second or two of a busy symbol, with no
  way to page back, so it could not vouch for a window a connection missed. The core records that window as
  a gap instead (``Source.live_only``). The records go to ``live_frame`` many messages at once.
- A subscribe answer with ``success: false`` fails the topics it names (``error:handler not found,topic:...``),
  or, naming none, every topic of that request (acks carry the request's ``req_id``); the others stream on.
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

TOPICS_PER_CONNECTION = 200
ARGS_PER_REQUEST = 10
DEFAULT_URL = "wss://stream.bybit.com/v5/public"
KLINE_KEYS = ("start", "open", "high", "low", "close", "volume", "turnover")  # the REST kline row's order
PING = json.dumps({"op": "ping"})


def websocket_url(settings: dict[str, Any], market: str) -> str:
    """``ws_url`` as given; else ``base_url`` with ``http`` -> ``ws`` and the market's path; else Bybit's."""
    if settings.get("ws_url"):
        return settings["ws_url"]
    if settings.get("base_url"):
        return f"{websocket_of(settings['base_url'])}/v5/public/{market}"
    return f"{DEFAULT_URL}/{market}"


TOPICS = {"trades": "publicTrade", "liquidations": "allLiquidation"}


def topic(stream: etl.Stream) -> str:
    from .source import INTERVALS

    if stream.dataset in TOPICS:
        return f"{TOPICS[stream.dataset]}.{stream.symbol}"
    return f"kline.{INTERVALS[stream.timeframe or '']}.{stream.symbol}"


def subscriptions(settings: dict[str, Any], market: str, streams: list[etl.Stream]) -> list[Subscription]:
    """Connections of at most 200 topics, each subscribing in requests of at most 10 args."""
    url = websocket_url(settings, market)
    found = []
    for index in range(0, len(streams), TOPICS_PER_CONNECTION):
        chunk = tuple(streams[index:index + TOPICS_PER_CONNECTION])
        args = [topic(stream) for stream in chunk]
        requests = tuple(json.dumps({"req_id": str(number), "op": "subscribe",
                                     "args": args[start:start + ARGS_PER_REQUEST]})
                         for number, start in enumerate(range(0, len(args), ARGS_PER_REQUEST)))
        found.append(Subscription(url, chunk, requests, ping=PING, ping_seconds=20.0,
                                  silence_seconds=settings.get("ws_silence") or 60.0))
    return found


def parse(message: str | bytes, subscription: Subscription) -> Iterable[tuple[etl.Stream, Any]]:
    """The confirmed klines of a frame (a frame), or its trades or liquidations (records, for ``frame``);
    nothing for forming bars, acks and pongs."""
    frame = json.loads(message)
    if frame.get("op") == "subscribe" and frame.get("success") is False:
        raise LiveRejected(_refused(frame, subscription), f"bybit refused the subscription: {frame.get('ret_msg')}")
    stream = _by_topic(subscription).get(frame.get("topic", ""))
    if stream is None:
        return ()
    if stream.dataset in TOPICS:
        return ((stream, frame["data"]),) if frame["data"] else ()
    from .source import KLINE_FIELDS

    rows = [[str(bar[key]) for key in KLINE_KEYS] for bar in frame["data"] if bar.get("confirm") is True]
    return ((stream, rows_to_frame(rows, KLINE_FIELDS)),) if rows else ()


def _refused(frame: dict[str, Any], subscription: Subscription) -> tuple[etl.Stream, ...]:
    """The streams a refusal names (``...,topic:kline.1.X``), else those of the request it answers."""
    by_topic = _by_topic(subscription)
    message = str(frame.get("ret_msg", ""))
    named = message.split("topic:", 1)[1].split(",") if "topic:" in message else []
    streams = tuple(by_topic[name] for name in named if name in by_topic)
    if streams:
        return streams
    for request in map(json.loads, subscription.messages):
        if request["req_id"] == frame.get("req_id"):
            return tuple(by_topic[name] for name in request["args"] if name in by_topic)
    return subscription.streams


@cache
def _by_topic(subscription: Subscription) -> dict[str, etl.Stream]:
    return {topic(stream): stream for stream in subscription.streams}


def frame(stream: etl.Stream, records: list[dict[str, Any]]) -> pl.DataFrame:
    """Trades (``T``, ``i``, ``p``, ``v``, ``S``: the taker's side) or liquidations (``S``: the position's side)."""
    import polars as pl

    raw = pl.from_dicts(records, schema={"T": pl.Int64, "i": pl.String, "p": pl.String, "v": pl.String,
                                         "S": pl.String})
    side = pl.col("S").str.to_lowercase()
    if stream.dataset == "liquidations":
        side = pl.when(side == "buy").then(pl.lit("sell")).otherwise(pl.lit("buy"))
    columns = [pl.col("T").alias("ts"), side.alias("side"), pl.col("p").cast(pl.Float64).alias("price"),
               pl.col("v").cast(pl.Float64).alias("size")]
    if stream.dataset == "trades":
        columns.insert(1, pl.col("i").alias("trade_id"))
    return raw.select(columns)
