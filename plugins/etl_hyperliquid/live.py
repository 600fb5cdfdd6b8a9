"""Hyperliquid's websocket ``candle`` and ``trades`` subscriptions for ``etl stream``
(``../shared/wire-formats-2.md`` A.3).

Trades: a ``trades`` frame's ``data`` is a list of trades, handed to the core as records (``trades_frame``
makes them rows, many messages at once). ``trade_id`` is ``<time>-<tid>``: ``tid`` is a 50-bit hash of the two
orders, which the venue says to pair with the block time for a unique id. ``side`` is the aggressor's (``B``
buy, ``A`` sell). A subscription starts with some 30 recent trades: those already stored are dropped by the
core, the others are real trades. Hyperliquid serves no trade history, so the windows a connection missed are
recorded as gaps (``Source.live_only``).

Hyperliquid's candle frames carry no closed flag: every frame of a candle has the same ``t`` and ``T`` while
``c h l v n`` move, and no frame announces the close (the last one arrives about 2 s before ``T``). The rule
here: **a candle is closed when a frame of a later candle of the same coin and interval arrives on the same
connection, and its row is the last frame received for it.** Why:

- Frames of one connection arrive in the venue's order, so once the next candle has begun, the venue has
  pushed its last update of the previous one; live captures show that last frame equal to the REST
  ``candleSnapshot`` row of the candle (the stored row is parsed by the REST code, so they are one row).
- The clock alone cannot say a candle is final (a frame may still be on its way after ``T`` plus any
  grace), and trusting the last frame at ``T`` would store a forming candle whenever updates lag.
- What this rule cannot vouch for is left to REST, through the core: a ``subscriptionResponse`` (every
  connection, and every reconnection, starts with one per subscription) forgets what the connection before
  left, because its last frame of a candle may not have been the last one; the core heals every
  (re)connection from REST up to the candle forming now, and a candle the connection never saw finish
  (frames lost, the subscription's first candle) becomes a hole that the next closed candle heals from
  REST. A frame of an older candle than the last one (late, repeated) is ignored.
- A coin without trades sends no frame, so nothing closes its last candle: the core's overdue heal does,
  from REST, 10 s after the candle's end (``etl.streaming.OVERDUE_MS``). Candles without trades do not exist
  in REST either.

Connections carry at most 100 subscriptions (Hyperliquid allows 10 connections and 1000 subscriptions per
IP) and send ``{"method": "ping"}`` every 20 s (the venue drops a connection idle for 60 s). An ``error``
frame naming a candle subscription (``Invalid subscription {...}``) fails that stream; "Already subscribed"
is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

import etl
from etl.live import LiveRejected, Subscription, websocket_of

from . import parsing

if TYPE_CHECKING:
    import polars as pl

SUBSCRIPTIONS_PER_CONNECTION = 100
DEFAULT_URL = "wss://api.hyperliquid.xyz/ws"
PING = json.dumps({"method": "ping"})


def websocket_url(settings: dict[str, Any]) -> str:
    """``ws_url`` as given; else ``base_url`` with ``http`` -> ``ws`` and ``/ws``; else Hyperliquid's."""
    if settings.get("ws_url"):
        return settings["ws_url"]
    if settings.get("base_url"):
        return websocket_of(settings["base_url"]) + "/ws"
    return DEFAULT_URL


def subscription_of(stream: etl.Stream) -> dict[str, str]:
    if stream.dataset == "trades":
        return {"type": "trades", "coin": stream.symbol}
    return {"type": "candle", "coin": stream.symbol, "interval": stream.timeframe or ""}


def subscriptions(settings: dict[str, Any], streams: list[etl.Stream]) -> list[Subscription]:
    url = websocket_url(settings)
    chunks = [tuple(streams[index:index + SUBSCRIPTIONS_PER_CONNECTION])
              for index in range(0, len(streams), SUBSCRIPTIONS_PER_CONNECTION)]
    return [Subscription(url, chunk, tuple(_subscribe(stream) for stream in chunk), ping=PING, ping_seconds=20.0,
                         silence_seconds=settings.get("ws_silence") or 60.0) for chunk in chunks]


def _subscribe(stream: etl.Stream) -> str:
    return json.dumps({"method": "subscribe", "subscription": subscription_of(stream)})


class CandleCloser:
    """The last frame of each subscription's newest candle, per connection: a later candle closes it."""

    def __init__(self) -> None:
        self.last: dict[tuple[Subscription, etl.Stream], dict[str, Any]] = {}

    def parse(self, message: str | bytes, subscription: Subscription) -> Iterable[tuple[etl.Stream, pl.DataFrame]]:
        frame = json.loads(message)
        channel, data = frame.get("channel"), frame.get("data")
        if channel == "subscriptionResponse":
            self._forget(subscription, _streams(subscription).get(_key(data.get("subscription") or {})))
        elif channel == "error":
            _check_error(str(data), subscription)
        elif channel == "candle":
            return self._candle(data, subscription)
        elif channel == "trades" and data:
            stream = _streams(subscription).get((data[0]["coin"], ""))
            return ((stream, data),) if stream else ()
        return ()

    def _forget(self, subscription: Subscription, stream: etl.Stream | None) -> None:
        """A new connection of ``stream`` (of every stream of the subscription, when the ack names none we know:
        its echo of the request may be normalized): what the last one saw is no proof of a candle's end."""
        for key in [key for key in self.last if key[0] == subscription and stream in (None, key[1])]:
            del self.last[key]

    def _candle(self, candle: dict[str, Any], subscription: Subscription) -> Iterable[tuple[etl.Stream, pl.DataFrame]]:
        stream = _streams(subscription).get((candle["s"], candle["i"]))
        if stream is None:
            return ()
        before = self.last.get((subscription, stream))
        if before is not None and candle["t"] < before["t"]:
            return ()
        self.last[subscription, stream] = candle
        if before is None or candle["t"] == before["t"]:
            return ()
        # Closed by a later candle, not by the clock: no "still forming" check against ours.
        return ((stream, parsing.candles([before], before["T"] + 1, f"candle of {before['s']} {before['i']}")),)


def _check_error(text: str, subscription: Subscription) -> None:
    """An error frame naming a candle subscription (``Invalid subscription {...}``) fails that stream; "Already
    subscribed" is harmless; any other is raised to be logged as an unreadable frame."""
    if text.startswith("Already subscribed"):
        return
    named = json.loads(text[text.index("{"):]) if "{" in text else {}
    stream = _streams(subscription).get(_key(named))
    if stream is None:
        raise ValueError(f"hyperliquid error frame: {text}")
    raise LiveRejected((stream,), f"hyperliquid refused the subscription: {text}")


def _key(subscription: dict[str, Any]) -> tuple[str, str]:
    return subscription.get("coin", ""), subscription.get("interval", "")


@cache
def _streams(subscription: Subscription) -> dict[tuple[str, str], etl.Stream]:
    return {(stream.symbol, stream.timeframe or ""): stream for stream in subscription.streams}


def trades_frame(trades: list[dict[str, Any]]) -> pl.DataFrame:
    """``WsTrade`` records as trades."""
    import polars as pl

    raw = pl.from_dicts(trades, schema={"time": pl.Int64, "tid": pl.Int64, "px": pl.String, "sz": pl.String,
                                        "side": pl.String})
    return raw.select(
        pl.col("time").alias("ts"), pl.format("{}-{}", "time", "tid").alias("trade_id"),
        pl.col("px").cast(pl.Float64).alias("price"), pl.col("sz").cast(pl.Float64).alias("size"),
        pl.when(pl.col("side") == "B").then(pl.lit("buy")).otherwise(pl.lit("sell")).alias("side"),
    )
