"""Bybit's v5 public websocket streams for ``etl stream``: closed klines of spot, linear and inverse markets.

A direct client, as for Binance (ccxt.pro hides the ``confirm`` flag); the core owns the connection
(``etl.live``), this module says where to connect and reads a frame (``../shared/wire-formats-2.md`` A.2).

- One endpoint per market, ``/v5/public/spot|linear|inverse``; topics ``kline.<interval>.<symbol>``, subscribed
  by ``{"op": "subscribe", "args": [...]}`` requests of at most 10 args (spot's limit, harmless elsewhere), at
  most 200 topics per connection (the args of one connection must stay under 21,000 characters).
- Bybit wants a JSON ping, ``{"op": "ping"}``, every 20 seconds; its pong counts as a frame, so a quiet symbol
  does not make the connection look silent.
- A kline frame is stored only when ``confirm`` is true; its fields are the REST kline's, so a live bar and the
  same bar from ``/v5/market/kline`` are one row (the REST row is rebuilt and parsed by the same code).
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


def topic(stream: etl.Stream) -> str:
    from .source import INTERVALS

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


def parse(message: str | bytes, subscription: Subscription) -> Iterable[tuple[etl.Stream, pl.DataFrame]]:
    """The confirmed klines of a frame, as their streams' rows; nothing for forming bars, acks and pongs."""
    frame = json.loads(message)
    if frame.get("op") == "subscribe" and frame.get("success") is False:
        raise LiveRejected(_refused(frame, subscription), f"bybit refused the subscription: {frame.get('ret_msg')}")
    if not str(frame.get("topic", "")).startswith("kline."):
        return ()
    stream = _by_topic(subscription).get(frame["topic"])
    if stream is None:
        return ()
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
