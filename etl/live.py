"""Live capture, the connection half: websocket connections that a live source describes, kept alive by the core.

A live source says which connections it needs (``Source.subscriptions``: a URL, the streams it carries, the
frames to send once connected, an application-level ping if the venue wants one) and how to read a frame
(``Source.parse_live``: the closed rows it holds, per stream). Everything else is the core's, so every venue
gets it the same way: reconnects with exponential backoff and jitter, replacing a connection that has gone
silent, protocol pings, and telling the stream followers (``etl.streaming``) that a connection came up, so they
heal from REST whatever its absence cost, or, for what REST cannot serve, record the window it was away.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .errors import EtlError
from .log import get_logger

if TYPE_CHECKING:
    import polars as pl

    from .base import Source, Stream

log = get_logger("etl.live")

BACKOFF_FIRST, BACKOFF_MOST = 0.5, 30.0


@dataclass(frozen=True)
class Subscription:
    """One websocket connection a live source needs."""

    url: str
    streams: tuple[Stream, ...]
    messages: tuple[str, ...] = ()  # text frames sent once connected (SUBSCRIBE requests)
    ping: str | None = None  # an application-level ping text, for venues that want one (Bybit, Hyperliquid)
    ping_seconds: float = 20.0
    silence_seconds: float = 60.0  # no frame at all for this long: the connection is replaced

    def __hash__(self) -> int:
        """Hashed once: a venue's parser looks its streams up by subscription at every frame, and the generated
        hash would hash each of its (up to 200) streams each time."""
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.url, self.streams, self.messages, self.ping, self.ping_seconds, self.silence_seconds))


class LiveRejected(EtlError):
    """The venue refused some streams of a subscription (an unknown symbol): they fail, the others go on."""

    def __init__(self, streams: tuple[Stream, ...], reason: str):
        super().__init__(reason)
        self.streams = streams


def _ignore(*_: Any) -> None:
    pass


@dataclass
class Listener:
    """Where a connection's news goes: closed rows, a (re)connection, a refused stream, the window a connection
    was away (epoch ms of the last frame before it dropped and of the first frame after); and, for ``etl status``
    (``etl.liveboard``), every frame heard and every disconnection with its reason."""

    rows: Callable[[Stream, pl.DataFrame | list[Any]], None]
    connected: Callable[[Subscription], None]
    rejected: Callable[[Stream, str], None]
    interrupted: Callable[[Subscription, int, int], None] = _ignore
    heard: Callable[[Subscription], None] = _ignore
    disconnected: Callable[[Subscription, str], None] = _ignore


@dataclass
class Heard:
    """When a subscription's connections last heard a frame (epoch ms), across reconnections."""

    last: int | None = None


class Connections:
    """Runs a source's connections on an asyncio loop in a thread of its own until ``stop`` is set; then drops
    them at once, without waiting for a close handshake a busy venue (or machine) may answer late: the exit has 5 s
    (DESIGN 9), and what the sockets still held was not a closed bar of ours yet."""

    def __init__(self, source: Source, subscriptions: list[Subscription], listener: Listener,
                 stop: threading.Event):
        self.source, self.subscriptions, self.listener, self.stop = source, subscriptions, listener, stop
        self._sockets: set[Any] = set()
        self._thread = threading.Thread(target=self._main, name="etl-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.run(self._all())

    async def _all(self) -> None:
        tasks = [asyncio.create_task(self._keep(subscription)) for subscription in self.subscriptions]
        while not self.stop.is_set():
            await asyncio.sleep(0.05)
        for socket in self._sockets:
            socket.transport.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, subscription: Subscription) -> None:
        """Connect, read until the connection fails or falls silent, wait (backoff with jitter), again."""
        attempt, heard = 0, Heard()
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                await self._session(subscription, heard)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = describe_disconnect(exc)
                log.warning("live disconnected", url=subscription.url, streams=len(subscription.streams),
                            error=reason)
                self.listener.disconnected(subscription, reason)
            attempt = 1 if time.monotonic() - began > BACKOFF_MOST else attempt + 1
            await asyncio.sleep(backoff(attempt))

    async def _session(self, subscription: Subscription, heard: Heard) -> None:
        import websockets

        async with websockets.connect(subscription.url, open_timeout=10, ping_interval=20, ping_timeout=20,
                                      close_timeout=1, max_size=2**24) as socket:
            self._sockets.add(socket)
            for message in subscription.messages:
                await socket.send(message)
            log.info("live connected", url=subscription.url, streams=len(subscription.streams))
            self.listener.connected(subscription)
            pinger = asyncio.create_task(self._ping(socket, subscription)) if subscription.ping else None
            try:
                await self._read(socket, subscription, heard)
            finally:
                self._sockets.discard(socket)
                if pinger is not None:
                    pinger.cancel()

    async def _read(self, socket: Any, subscription: Subscription, heard: Heard) -> None:
        """Frames to the listener; the first one after a reconnection first reports the window away. One deadline
        for the silence, pushed back as frames come (at most an eighth of it late): ``wait_for`` made a task a
        frame, which doubled the reader's CPU at 30,000 frames a second."""
        from .timeframes import now_ms

        away, loop = heard.last, asyncio.get_running_loop()
        silence, pushed = subscription.silence_seconds, -subscription.silence_seconds
        try:
            async with asyncio.timeout(None) as deadline:
                while True:
                    if loop.time() - pushed > silence / 8:
                        pushed = loop.time()
                        deadline.reschedule(pushed + silence)
                    message = await socket.recv()
                    heard.last = now_ms()
                    self.listener.heard(subscription)
                    if away is not None:
                        self.listener.interrupted(subscription, away, heard.last)
                        away = None
                    for stream, frame in self._parsed(message, subscription):
                        self.listener.rows(stream, frame)
        except TimeoutError:
            raise TimeoutError(f"no frame for {silence:g}s: replacing the connection") from None

    def _parsed(self, message: str | bytes, subscription: Subscription) -> list[tuple[Stream, Any]]:
        """A frame's closed rows; a refusal fails its streams, an unreadable frame is logged and skipped."""
        try:
            return list(self.source.parse_live(message, subscription))
        except LiveRejected as exc:
            for stream in exc.streams:
                self.listener.rejected(stream, str(exc))
        except Exception as exc:
            log.warning("live frame unreadable", url=subscription.url, error=f"{type(exc).__name__}: {exc}",
                        frame=str(message)[:120])
        return []

    @staticmethod
    async def _ping(socket: Any, subscription: Subscription) -> None:
        while True:
            await asyncio.sleep(subscription.ping_seconds)
            await socket.send(subscription.ping)


def websocket_of(base_url: str) -> str:
    """The websocket address of a REST ``base_url``: ``http`` -> ``ws``, ``https`` -> ``wss``, same host and port
    (DESIGN 9: with ``base_url`` set and ``ws_url`` not, a live source derives its endpoint from it)."""
    base = base_url.rstrip("/")
    return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def backoff(attempt: int) -> float:
    """Seconds before reconnect attempt ``attempt`` (1, 2, ...): doubling from half a second to 30, with
    jitter, so a venue's restart is not met by every client at the same instant."""
    return min(BACKOFF_MOST, BACKOFF_FIRST * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def describe_disconnect(exc: BaseException) -> str:
    """Why a connection ended, in words: refused, closed by the venue (code), silent, or the error."""
    import websockets

    if isinstance(exc, websockets.ConnectionClosed):
        frame = exc.rcvd or exc.sent
        if frame is None:
            return "connection dropped without a close frame"
        return f"closed with code {frame.code}" + (f" ({frame.reason})" if frame.reason else "")
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"
