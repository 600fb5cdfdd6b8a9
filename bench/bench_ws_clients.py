"""Our direct websocket client (``etl.live.Connections`` + the Binance source's ``parse_live``) against ccxt.pro
(``ccxt.pro.binance``: ``watch_ohlcv``, ``watch_trades``), reading the same Binance frames from a local server.

The server runs in a process of its own and sends a fixed number of frames as fast as the client reads them
(the socket's back-pressure paces it): kline_1s frames, nine updates of a forming bar (``"x": false``) then its
closing frame (``"x": true``), or aggTrade frames. Our client gets them on a combined-stream URL
(``/stream?streams=...``, frames wrapped in ``{"stream", "data"}``), ccxt on its raw endpoint after a SUBSCRIBE,
unwrapped, as Binance serves each. The figures are messages per second (wall clock, from the first frame to
the last one handled) and CPU seconds the client process spent per 100,000 messages; "returned" counts what the
client handed its caller: closed rows for ours (one per bar; none for trades, which the source does not follow
live), ``watch_*`` returns for ccxt.pro.

    python bench/bench_ws_clients.py                  # 30,000 frames per run, both clients, klines and trades
    python bench/bench_ws_clients.py --frames 10000   # quicker

More frames than the client reads in 20 s make ours reconnect: the server answers its keepalive ping behind every
frame already queued, and a pong later than 20 s ends the connection (the bench stops and says so).

What each exposes is printed after the figures (the closed flag, reconnect hooks, per-stream subscribe errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

START = 1_704_067_200_000  # 2024-01-01, the first bar
UPDATES = 10  # frames per bar: nine forming updates, then the closing frame


def kline(index: int) -> dict[str, Any]:
    """The ``index``-th kline event: bar ``index // UPDATES``, closed on its last frame."""
    bar = START + index // UPDATES * 1000
    price = f"{42000 + index % 97:.2f}"
    return {"e": "kline", "E": bar + 500, "s": "BTCUSDT", "k": {
        "t": bar, "T": bar + 999, "s": "BTCUSDT", "i": "1s", "f": index, "L": index, "o": price, "c": price,
        "h": price, "l": price, "v": "1.5", "n": 3, "x": index % UPDATES == UPDATES - 1, "q": "63000.0",
        "V": "0.7", "Q": "29400.0", "B": "0"}}


def agg_trade(index: int) -> dict[str, Any]:
    return {"e": "aggTrade", "E": START + index, "s": "BTCUSDT", "a": index, "p": f"{42000 + index % 97:.2f}",
            "q": "0.01", "f": index, "l": index, "T": START + index, "m": index % 2 == 0, "M": True}


EVENTS: dict[str, Callable[[int], dict[str, Any]]] = {"kline": kline, "aggTrade": agg_trade}


# --- the server, in its own process ---

def serve(kind: str, frames: int, ports: Any) -> None:
    asyncio.run(_serve(kind, frames, ports))


async def _serve(kind: str, frames: int, ports: Any) -> None:
    import websockets

    events = [EVENTS[kind](index) for index in range(frames)]
    wrapped = [json.dumps({"stream": f"btcusdt@{kind}", "data": event}) for event in events]
    raw = [json.dumps(event) for event in events]

    async def connection(socket: Any) -> None:
        if socket.request.path.startswith("/stream?"):
            frames_out = wrapped  # a combined stream: the streams are in the URL
        else:
            request = json.loads(await socket.recv())  # ccxt's SUBSCRIBE
            await socket.send(json.dumps({"result": None, "id": request["id"]}))
            frames_out = raw
        for frame in frames_out:
            await socket.send(frame)
        await socket.wait_closed()

    async with websockets.serve(connection, "127.0.0.1", 0, max_queue=None) as server:
        ports.put(next(iter(server.sockets)).getsockname()[1])
        await asyncio.Future()


class Server:
    """The frame server as a child process, so the client's CPU time is the client's alone."""

    def __init__(self, kind: str, frames: int):
        self.ports: Any = multiprocessing.Queue()
        self.process = multiprocessing.Process(target=serve, args=(kind, frames, self.ports), daemon=True)

    def __enter__(self) -> str:
        self.process.start()
        return f"ws://127.0.0.1:{self.ports.get(timeout=30)}"

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join(5)


# --- the clients ---

def ours(url: str, kind: str, frames: int) -> tuple[float, float, int]:
    """``etl.live.Connections`` with the Binance source's subscriptions and ``parse_live``: (wall seconds from the
    first frame to the last, CPU seconds, closed rows delivered)."""
    import tempfile

    from etl.config import load
    from etl.live import Connections, Listener
    from etl.plugins import registry
    from etl.testing import single_pipeline, write_pipeline

    config = {"plugin": "binance", "symbols": ["BTCUSDT"], "timeframes": ["1s"], "start": "2024-01-01",
              "base_url": "http://127.0.0.1:9", "ws_url": url}
    with tempfile.TemporaryDirectory() as folder:
        (spec,) = load(write_pipeline(Path(folder), single_pipeline(config, [{"plugin": "duckdb", "path": "x.db"}]))
                       ).pipelines.values()
    source = registry().get("source", "binance")(spec.source)
    (subscription,) = source.subscriptions(source.streams())
    if kind == "aggTrade":  # the source follows klines; the trade frames go through the same reading and parsing
        subscription = type(subscription)(subscription.url.replace("kline_1s", "aggTrade"), subscription.streams)
    done, heard, rows, connects = threading.Event(), [0], [0], [0]
    first: list[float] = []

    def on_frame(_: object) -> None:
        heard[0] += 1
        if heard[0] == 1:
            first.append(time.perf_counter())
        if heard[0] == frames:
            done.set()

    def on_rows(_: object, frame: Any) -> None:
        rows[0] += frame.height

    stop = threading.Event()
    def on_connect(_: object) -> None:
        connects[0] += 1

    listener = Listener(on_rows, on_connect, lambda *_: None, heard=on_frame)
    connections = Connections(source, [subscription], listener, stop)
    began = time.process_time()
    connections.start()
    done.wait(600)
    seconds, cpu = time.perf_counter() - first[0], time.process_time() - began
    stop.set()
    connections.join(5)
    if connects[0] > 1:
        sys.exit("etl.live reconnected: its keepalive pong waited behind more than 20 s of queued frames; "
                 "lower --frames")
    return seconds, cpu, rows[0]


def ccxt_pro(url: str, kind: str, frames: int) -> tuple[float, float, int]:
    """ccxt.pro's binance, its spot websocket URL pointed at ``url``: (wall seconds from the first answer to the
    last frame, CPU seconds, how many times a ``watch_*`` call returned: frames that arrive while the caller is
    busy are folded into one return)."""
    return asyncio.run(_ccxt_pro(url, kind, frames))


async def _ccxt_pro(url: str, kind: str, frames: int) -> tuple[float, float, int]:
    import ccxt.pro

    # '/stream' must be in the path: ccxt tells spot from futures frames by it (ccxt/pro/binance.py is_spot_url)
    exchange = ccxt.pro.binance({"urls": {"api": {"ws": {"spot": f"{url}/stream/ws"}}},
                                 "options": {"watchTrades": {"name": "aggTrade"}}})
    exchange.set_markets([MARKET])
    last = EVENTS[kind](frames - 1)
    began, first, returned = time.process_time(), None, 0
    try:
        while True:
            if kind == "kline":
                got = await exchange.watch_ohlcv("BTC/USDT", "1s")
                finished = got[-1][0] == last["k"]["t"] and got[-1][4] == float(last["k"]["c"])
            else:
                got = await exchange.watch_trades("BTC/USDT")
                finished = got[-1]["id"] == str(last["a"])
            first, returned = first or time.perf_counter(), returned + 1
            if finished:
                break
        return time.perf_counter() - first, time.process_time() - began, returned
    finally:
        await exchange.close()


MARKET = {"id": "BTCUSDT", "lowercaseId": "btcusdt", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
          "baseId": "BTC", "quoteId": "USDT", "type": "spot", "spot": True, "margin": False, "swap": False,
          "future": False, "option": False, "contract": False, "linear": None, "inverse": None, "active": True,
          "settle": None, "settleId": None, "contractSize": None, "expiry": None, "expiryDatetime": None,
          "strike": None, "optionType": None, "taker": 0.001, "maker": 0.001,
          "precision": {"amount": 0.00001, "price": 0.01},
          "limits": {"amount": {"min": None, "max": None}, "price": {"min": None, "max": None},
                     "cost": {"min": None, "max": None}}, "info": {}}

CLIENTS = {"etl.live (websockets)": ours, "ccxt.pro": ccxt_pro}

EXPOSES = """What each client gives its caller:
- kline closed flag "x": etl.live hands parse_live the raw frame, so only closed bars become rows (one per bar:
  'returned' above). ccxt.pro drops it: handle_ohlcv keeps [t, o, h, l, c, v] and a newer frame of the
  same t replaces the row in its cache (ccxt/pro/binance.py handle_ohlcv), so a caller cannot tell a closed bar
  from a forming one, and quote volume, trade count and taker volumes are gone too.
- reconnects: etl.live reconnects by itself (backoff with jitter, a silent connection replaced) and calls
  Listener.connected on every (re)connection, when the core heals the hole from REST, and
  Listener.disconnected with the cause. ccxt.pro reconnects only when the caller calls watch_* again: a
  closed connection rejects the pending call (NetworkError 'Connection closed by remote server, closing code
  N', async_support/base/ws/client.py on_close) and is forgotten (async_support/base/exchange.py on_close);
  its one hook is the method Exchange.on_connected(client) ('for user hooks', exchange.py), for a subclass
  to override, with nothing that says what the gap cost.
- per-stream subscribe errors: etl.live's parse_live raises LiveRejected(streams, reason) for the refused
  streams only, and the others stream on. ccxt.pro binance matches an error frame to its SUBSCRIBE by request
  id (pro/binance.py handle_ws_error), and watch_ohlcv_for_symbols sends every stream in one SUBSCRIBE, so
  one refused stream fails them all. (Binance acknowledges an unknown symbol and stays silent: neither client
  hears of it there; the REST heal names it, for etl.live.)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=30_000)
    args = parser.parse_args()
    print(f"python bench/bench_ws_clients.py --frames {args.frames}   (load average {os.getloadavg()[0]:.1f})")
    print(f"{'client':24} {'frames':8} {'msgs/s':>9} {'CPU s/100k':>11} {'returned':>12}")
    for kind in ("kline", "aggTrade"):
        for name, client in CLIENTS.items():
            with Server(kind, args.frames) as url:
                seconds, cpu, handed = client(url, kind, args.frames)
            print(f"{name:24} {kind:8} {args.frames / seconds:9,.0f} {cpu / args.frames * 100_000:11.2f} "
                  f"{handed:12,}")
    print()
    print(EXPOSES)


if __name__ == "__main__":
    main()
