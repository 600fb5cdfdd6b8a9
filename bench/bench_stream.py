"""Live capture: ``etl stream`` of Binance klines and aggregate trades into DuckDB, against local fakes of Binance's
REST API and websocket streams, run as a real ``python -m etl stream`` process (its RSS and CPU its own).

    python bench/bench_stream.py latency                    # 200 symbols x 1s bars for 60 s: closing frame -> commit
    python bench/bench_stream.py disconnects                # 20 forced disconnects; stored == an `etl backfill` oracle
    python bench/bench_stream.py soak --minutes 30 --sample 5   # RSS every 5 s: peak, growth from minute 5 to the end
    python bench/bench_stream.py trades --rate 30000        # 20 aggTrade streams, 30,000 messages/s in all

latency: DuckDB lets one process hold a file read-write and no other process open it, not even read-only, so the
bench cannot poll the table. It polls the pipeline's checkpoint file instead (every 10 ms): the committer moves a
stream's checkpoint past a bar only after every sink's transaction holding that bar has committed, and replaces
the file atomically. So "the checkpoint of S001USDT passed bar t, seen at instant c" means the row was visible
in DuckDB at c at the latest: the figure is an upper bound (by the poll interval and the checkpoint's own write).
The start is the instant the fake venue built the bar's closing frame (``x: true``), just before sending it.
Both instants are this process's wall clock. Bars whose frame went out in the first ``--warmup`` seconds (the
start-up heal) or in the last second are left out.

Why 1-second bars in real time, not 1-minute bars on the accelerated ``ETL_CLOCK``: 200 symbols x 1s bars close
200 bars every second, the load of 200 x 1m bars times 60, while every duration the code reads (the fake's 334 ms
close delay, the 10 s overdue heal, backoffs, the committer's 50 ms gather) stays a real duration; on the
accelerated clock they shrink 60-fold, and the 10 s overdue heal (0.17 s of wall time) races the websocket: most
bars then land by REST.
The fake sends each stream's forming bar every 200 ms (Binance: every 1-2 s), so the socket carries 1,000 forming
updates a second on top of the 200 closing frames.

disconnects: every ``--drop-every`` seconds after a reconnect, the fake cuts the connection without a close frame,
``--drops`` times; then the run goes on ``--seconds``. The reconnect backoff grows while connections last under
30 s (0.5 s doubling to 30 s), so the run takes about 8 minutes. Then ``etl backfill`` of the same window into a
second DuckDB is the oracle: missing, duplicate and extra rows, and rows whose values differ, per (symbol, ts).
Latency figures of this run include the bars that waited out a backoff.

soak: the latency run for ``--minutes``, sampling the process's RSS and CPU from /proc.

trades: a tape of ``--rate / --symbols`` trades a second per symbol, served alike by the REST fake's
``aggTrades`` and the websocket fake, so heals bring the very trades the socket sent, as on Binance. Committed
rows per second come from the checkpoint's row counts (every 0.5 s), after ``--warmup``; the process's cores from
/proc; "rows per CPU-second" is the figure the machine's load moves least. After the stop, the trades in DuckDB
are checked against the tape: none twice, none missing before the last stored one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from etl.testing import Reply, single_pipeline, write_pipeline  # noqa: E402
from etl.timeframes import iso, now_ms, timeframe_ms  # noqa: E402
from fixtures.fake_binance import FakeBinance  # noqa: E402
from fixtures.fake_binance_ws import FakeBinanceWebsocket  # noqa: E402
from fixtures.fake_ws import FakeWebsocket  # noqa: E402

SINKS = [{"plugin": "duckdb", "path": "market.duckdb"}]
POLL_SECONDS = 0.01
FIRST_TRADE = 5_000_000_000


class TimedWebsocket(FakeBinanceWebsocket):
    """The Binance websocket fake, noting the wall-clock instant each bar's closing frame was built (then sent);
    ``cut`` drops every open connection at once, without a close frame (the fake's own ``drop`` only cuts
    connections yet to come)."""

    def __init__(self, rest: FakeBinance):
        super().__init__(rest)
        self.sent: dict[tuple[str, int], float] = {}
        self._open: set[Any] = set()

    async def _connection(self, socket: Any) -> None:
        self._open.add(socket)
        try:
            await super()._connection(socket)
        finally:
            self._open.discard(socket)

    def cut(self) -> None:
        for socket in list(self._open):
            self._loop.call_soon_threadsafe(socket.transport.abort)

    def frame(self, feed: Any, bar: int, now: int | None) -> str:
        text = super().frame(feed, bar, now)
        if now is None:
            self.sent.setdefault((feed.symbol, bar), time.time())
        return text


@dataclass(frozen=True)
class TradeTape:
    """A market of ``per_second`` aggregate trades a second per symbol from ``origin`` (epoch ms) on: trade ``k``
    of every symbol has id ``FIRST_TRADE + k`` and time ``origin + k * 1000 // per_second``. The REST fake and the
    websocket fake both serve it, so a heal from REST brings exactly the trades the websocket sent (as on Binance)."""

    origin: int
    per_second: int

    def index_at(self, ts: int) -> int:
        """The first trade at or after ``ts``."""
        return max(0, -(-(ts - self.origin) * self.per_second // 1000))

    def trade(self, symbol: str, k: int, spot: bool = True) -> dict[str, Any]:
        trade = FIRST_TRADE + k
        return {"a": trade, "p": f"{100 + k % 1000 / 100:.2f}", "q": f"{0.001 + k % 7:.3f}", "f": 2 * trade,
                "l": 2 * trade + 1, "T": self.origin + k * 1000 // self.per_second, "m": k % 2 == 1,
                **({"M": True} if spot else {})}


class TapeRest(FakeBinance):
    """The Binance REST fake whose ``aggTrades`` serve the tape (published up to now), with the REST fake's
    paging rules: by ``fromId``, or in ``[startTime, endTime]``, oldest first, at most ``limit``."""

    def __init__(self, tape: TradeTape, symbols: list[str]):
        super().__init__(spot=tuple(symbols))
        self.tape = tape

    def agg_trades(self, query: dict[str, str], family: str) -> Reply:
        limit = int(query.get("limit", 500))
        start, end, from_id = (int(query[name]) if name in query else None
                               for name in ("startTime", "endTime", "fromId"))
        newest = self.tape.index_at(now_ms() + 1)
        if from_id is not None:
            first = from_id - FIRST_TRADE
        elif start is not None:
            first = self.tape.index_at(start)
            newest = min(newest, self.tape.index_at((end if end is not None else start + 3_600_000 - 1) + 1))
        else:
            first = newest - limit
        trades = range(max(first, 0), min(first + limit, newest))
        return Reply.json([self.tape.trade(query["symbol"], k, family == "spot") for k in trades])


class TapeWebsocket(FakeWebsocket):
    """Binance's ``<symbol>@aggTrade`` combined stream of the tape: every 5 ms, each symbol's trades that
    happened since, one trade a message as Binance sends them. So that a Python fake can send 30,000 messages a
    second on a shared core, it frames them itself (one standard unmasked text frame a trade) and writes each
    tick's frames to the socket at once, holding back while the client has 4 MB unread; the server declines
    permessage-deflate, so its CPU is not spent compressing either, and sends no keepalive ping, so a client that
    falls behind is measured, not disconnected (its ping would wait behind the backlog)."""

    def __init__(self, tape: TradeTape):
        super().__init__(0)
        self.tape = tape
        self.sent: dict[str, int] = {}

    def frame_of(self, symbol: str, k: int) -> str:
        """Trade ``k`` as Binance's combined stream frames it (a template: 30,000 ``json.dumps`` a second would
        make the fake, not the client, the limit)."""
        trade = self.tape.trade(symbol, k)
        return (f'{{"stream":"{symbol.lower()}@aggTrade","data":{{"e":"aggTrade","E":{now_ms()},"s":"{symbol}",'
                f'"a":{trade["a"]},"p":"{trade["p"]}","q":"{trade["q"]}","f":{trade["f"]},"l":{trade["l"]},'
                f'"T":{trade["T"]},"m":{"true" if trade["m"] else "false"},"M":true}}}}')

    async def _serve(self) -> None:
        import websockets

        self._loop = asyncio.get_running_loop()
        async with websockets.serve(self._connection, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
            self._server = server
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await server.wait_closed()

    async def _connection(self, socket: Any) -> None:
        query = parse_qs(urlsplit(socket.request.path).query)
        symbols = [name.partition("@")[0].upper() for part in query.get("streams", []) for name in part.split("/")]
        at = self.tape.index_at(now_ms())
        for symbol in symbols:
            self.sent.setdefault(symbol, 0)
        with contextlib.suppress(Exception):
            while not socket.transport.is_closing():  # a client gone without a close frame (SIGTERM) ends it too
                await asyncio.sleep(0.005)
                due = self.tape.index_at(now_ms() + 1)
                while socket.transport.get_write_buffer_size() > 4 << 20:
                    await asyncio.sleep(0.005)
                frames = [text_frame(self.frame_of(symbol, k)) for k in range(at, due) for symbol in symbols]
                socket.transport.write(b"".join(frames))
                for symbol in symbols:
                    self.sent[symbol] += due - at
                at = due


def text_frame(text: str) -> bytes:
    """A websocket text frame from the server (final, unmasked), RFC 6455 section 5.2."""
    payload = text.encode()
    size = len(payload)
    header = bytes([0x81, size]) if size < 126 else bytes([0x81, 126]) + size.to_bytes(2, "big")
    return header + payload


class Poller:
    """A thread that runs ``_run`` while the ``with`` block lasts; ``_run`` waits on ``_stop`` between polls."""

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class CheckpointWatch(Poller):
    """Polls a checkpoint file; notes the wall-clock instant each stream's checkpoint first passed each bar."""

    def __init__(self, path: Path, step: int, interval: float = POLL_SECONDS):
        super().__init__(interval)
        self.path, self.step = path, step
        self.committed: dict[tuple[str, int], float] = {}
        self._next: dict[str, int] = {}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                streams = json.loads(self.path.read_text())["streams"]
            except (OSError, ValueError):
                continue
            seen = time.time()
            for label, entry in streams.items():
                symbol, before = label.split("/")[1], self._next.get(label)
                self._next[label] = entry["next_ms"]
                if before is None:
                    continue
                for bar in range(before, entry["next_ms"], self.step):
                    self.committed.setdefault((symbol, bar), seen)


class Sampler(Poller):
    """RSS and CPU time of a process, every ``interval`` seconds, from /proc."""

    def __init__(self, pid: int, interval: float):
        super().__init__(interval)
        self.pid = pid
        self.samples: list[tuple[float, float, float]] = []  # (seconds since start, RSS MB, CPU seconds)
        self.began = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
                cpu = cpu_seconds(self.pid)
            except OSError:
                return
            rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            self.samples.append((time.monotonic() - self.began, rss_kb / 1024, cpu))

    def cores(self, since: float = 0.0) -> float:
        """CPU seconds per wall second from ``since`` (seconds after start) to the last sample."""
        kept = [sample for sample in self.samples if sample[0] >= since]
        if len(kept) < 2:
            return 0.0
        return (kept[-1][2] - kept[0][2]) / (kept[-1][0] - kept[0][0])

    def rss_at(self, seconds: float) -> float:
        """The first RSS sample at or after ``seconds``."""
        return next(rss for at, rss, _ in self.samples if at >= seconds)


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far (user and system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def symbol_names(count: int) -> list[str]:
    return [f"S{index:03d}USDT" for index in range(count)]


def env() -> dict[str, str]:
    """The child's environment: this worktree's code first, on the wall clock."""
    paths = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])
    return {**{name: value for name, value in os.environ.items() if name != "ETL_CLOCK"}, "PYTHONPATH": paths}


def binance_source(rest: FakeBinance, ws: Any, symbols: list[str], timeframe: str, start: int,
                   dataset: str = "ohlcv") -> dict[str, Any]:
    """A pipeline's ``source`` table: Binance's ``dataset`` of ``symbols`` from ``start``, through the fakes."""
    return {"plugin": "binance", "symbols": symbols, "start": iso(start), "base_url": rest.url, "ws_url": ws.url,
            "dataset": dataset, **({"timeframes": [timeframe]} if dataset == "ohlcv" else {})}


def pipeline(folder: Path, rest: FakeBinance, ws: Any, symbols: list[str], timeframe: str, start: int,
             dataset: str = "ohlcv") -> Path:
    source = binance_source(rest, ws, symbols, timeframe, start, dataset)
    return write_pipeline(folder, single_pipeline(source, SINKS, name="bench"))


@contextlib.contextmanager
def streaming(path: Path, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m etl [OPTIONS] stream``, its output in files beside the pipeline (a pipe nobody reads would
    block it); killed if the bench fails or is interrupted before ``stop``, so no stream outlives its fakes."""
    out, err = (open(path.parent / name, "wb") for name in ("stream.out", "stream.err"))  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "etl", "--log-format", "json", *options, "stream", str(path)],
                               stdout=out, stderr=err, env=env(), cwd=path.parent)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen[bytes], path: Path) -> float:
    """SIGTERM; seconds it took to exit. Exits on a failed run with the tail of its log."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(30)
    took = time.monotonic() - began
    if code != 0:
        sys.exit(f"etl stream exited {code}:\n{(path.parent / 'stream.err').read_text()[-3000:]}")
    return took


def stored_keys(path: Path, table: str = "ohlcv") -> Any:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.sql(f"SELECT * FROM {table} ORDER BY symbol, ts").pl()


def compare_with_backfill(folder: Path, rest: FakeBinance, ws: Any, symbols: list[str], timeframe: str,
                          start: int) -> dict[str, int]:
    """Backfill the window the stream covered into a second DuckDB and compare, row for row, up to the earliest
    of the symbols' last stored bars (a stream stopped by SIGTERM may be a bar behind another: the next start
    heals it). Missing, duplicate and extra rows, and rows whose values differ."""
    import polars as pl

    live = stored_keys(folder / "market.duckdb")
    last = live.group_by("symbol").agg(pl.col("ts").max())["ts"].min()
    end = int(last.timestamp() * 1000) + timeframe_ms(timeframe)
    oracle_path = pipeline(folder.parent / "oracle", rest, ws, symbols, timeframe, start)
    done = subprocess.run([sys.executable, "-m", "etl", "-q", "backfill", str(oracle_path), "--pipeline", "bench",
                           "--start", iso(start), "--end", iso(end)], env=env(), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"etl backfill failed ({done.returncode}):\n{done.stderr[-3000:]}")
    oracle = stored_keys(oracle_path.parent / "market.duckdb")
    live = live.filter(pl.col("ts").dt.epoch("ms") < end)
    keys = ["symbol", "ts"]
    values = [column for column in oracle.columns if column not in ("ingested_at", "updated_at")]
    return {
        "oracle rows": oracle.height,
        "stored rows": live.height,
        "missing": oracle.join(live, on=keys, how="anti").height,
        "duplicate": live.height - live.unique(subset=keys).height,
        "extra": live.join(oracle, on=keys, how="anti").height,
        "values differ": live.select(values).join(oracle.select(values), on=values, how="anti", nulls_equal=True)
        .join(oracle, on=keys, how="semi").height,
        "end": end,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def sleep(ws: Any, seconds: float) -> None:
    time.sleep(seconds)


def run_klines(args: argparse.Namespace, seconds: float, during: Any = sleep) -> Sampler:
    """One ``etl stream`` run of ``--symbols`` kline streams for ``seconds``: latency, CPU, RSS, and the oracle."""
    symbols = symbol_names(args.symbols)
    step = timeframe_ms(args.timeframe)
    with FakeBinance(spot=tuple(symbols)) as rest, TimedWebsocket(rest) as ws, \
            tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "live"
        start = now_ms() // step * step - args.history * step
        path = pipeline(folder, rest, ws, symbols, args.timeframe, start)
        checkpoint = folder / ".etl" / "checkpoints" / "bench.json"
        with streaming(path) as process:
            with Sampler(process.pid, args.sample) as sampler, CheckpointWatch(checkpoint, step) as watch:
                began = time.time()
                during(ws, seconds)
                ended = time.time()
            took = stop(process, path)
        report_latency(ws.sent, watch.committed, began + args.warmup, ended - 1, args.warmup)
        report_process(sampler, args.warmup, took, ws)
        report_oracle(compare_with_backfill(folder, rest, ws, symbols, args.timeframe, start))
        log = (path.parent / "stream.err").read_text()
        print(f"log: {log.count('live heal')} 'live heal', {log.count('live disconnected')} 'live disconnected'")
    return sampler


def report_latency(sent: dict[tuple[str, int], float], committed: dict[tuple[str, int], float], after: float,
                   before: float, warmup: float) -> None:
    """Closing frame -> checkpoint past the bar, for the bars whose frame was sent in ``[after, before]``."""
    window = {key: at for key, at in sent.items() if after <= at <= before}
    latencies = [committed[key] - at for key, at in window.items() if key in committed]
    never = len(window) - len(latencies)
    if not latencies:
        print("latency: no closing frame was committed")
        return
    print(f"latency closing frame -> committed ({len(latencies):,} bars after {warmup:g}s warm-up; "
          f"{never} never committed): p50 {percentile(latencies, .5) * 1000:.0f} ms, "
          f"p90 {percentile(latencies, .9) * 1000:.0f} ms, p99 {percentile(latencies, .99) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms, mean {statistics.fmean(latencies) * 1000:.0f} ms "
          f"(target p99 < 1000 ms)")


def report_process(sampler: Sampler, warmup: float, took: float, ws: Any) -> None:
    peak = max(rss for _, rss, _ in sampler.samples)
    print(f"etl stream: {sampler.cores(warmup):.2f} cores after warm-up, peak RSS {peak:.0f} MB, "
          f"SIGTERM -> exit {took:.1f}s; fake: {ws.connections} connections, {ws.closing_frames_sent:,} closing frames")


def report_oracle(result: dict[str, int]) -> None:
    print(f"vs `etl backfill` up to {iso(result['end'])}: {result['stored rows']:,} stored, "
          f"{result['oracle rows']:,} in the oracle; missing {result['missing']}, duplicate {result['duplicate']}, "
          f"extra {result['extra']}, values differ {result['values differ']} (target 0 missing, 0 duplicate)")


def forced_drops(drops: int, every: float) -> Any:
    """During the run: cut the connection abruptly ``drops`` times, each ``every`` seconds after the previous
    reconnect; then stream on for ``seconds`` (the reconnect backoff grows while connections last under 30 s)."""

    def during(ws: Any, seconds: float) -> None:
        began = time.monotonic()
        for _ in range(drops):
            time.sleep(every)
            connections = ws.connections
            ws.cut()
            while ws.connections <= connections:
                time.sleep(0.05)
        print(f"forced disconnects: {drops} in {time.monotonic() - began:.0f}s ({ws.connections} connections in "
              "all)")
        time.sleep(seconds)

    return during


def report_soak(sampler: Sampler, minutes: float) -> None:
    early, late = sampler.rss_at(min(300, minutes * 60 / 6)), sampler.samples[-1][1]
    print(f"RSS: at {min(5.0, minutes / 6):g} min {early:.0f} MB, at {minutes:g} min {late:.0f} MB: "
          f"growth {(late - early) / early:+.1%} (target < 5%); peak "
          f"{max(rss for _, rss, _ in sampler.samples):.0f} MB (target < 300 MB)")
    minutes_seen = range(1, int(sampler.samples[-1][0] // 60) + 1)
    print("RSS by minute (MB): " + " ".join(f"{sampler.rss_at(minute * 60 - 1):.0f}" for minute in minutes_seen))


def committed_rows(checkpoint: Path) -> int:
    """Rows committed so far, every stream of the checkpoint file together (0 before its first write)."""
    try:
        return sum(entry["rows"] for entry in json.loads(checkpoint.read_text())["streams"].values())
    except (OSError, ValueError):
        return 0


def run_trades(args: argparse.Namespace) -> None:
    """``--symbols`` aggTrade streams at ``--rate`` messages/s in all for ``--seconds``: rows committed per second
    after the warm-up (from the checkpoint's row counts, every 0.5 s), the process's cores, and, after the stop,
    each symbol's live trades in DuckDB against what the fake sent."""
    symbols = symbol_names(args.symbols)
    tape = TradeTape(now_ms(), int(args.rate / args.symbols))
    with TapeRest(tape, symbols) as rest, TapeWebsocket(tape) as ws, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "live"
        path = pipeline(folder, rest, ws, symbols, "", tape.origin, dataset="trades")
        checkpoint = folder / ".etl" / "checkpoints" / "bench.json"
        counts: list[tuple[float, int, int]] = []  # (seconds, rows committed, messages sent)
        with streaming(path) as process:
            with Sampler(process.pid, args.sample) as sampler:
                while (elapsed := time.monotonic() - sampler.began) < args.seconds:
                    time.sleep(0.5)
                    counts.append((elapsed, committed_rows(checkpoint), sum(ws.sent.values())))
            took, published = stop(process, path), tape.index_at(now_ms() + 1)
        steady = [count for count in counts if count[0] >= args.warmup]
        (t0, rows0, sent0), (t1, rows1, sent1) = steady[0], steady[-1]
        rate, cores = (rows1 - rows0) / (t1 - t0), sampler.cores(args.warmup)
        print(f"trades: {args.symbols} symbols, fake sent {(sent1 - sent0) / (t1 - t0):,.0f} messages/s (asked "
              f"{args.rate:,.0f}); committed {rate:,.0f} rows/s from {args.warmup:g}s to {t1:.0f}s, behind by "
              f"{sent1 - rows1:,} at the end (target >= 30,000/s)")
        print(f"etl stream: {cores:.2f} cores from {args.warmup:g}s (target < 1.5): {rate / max(cores, 0.01):,.0f} "
              f"rows per CPU-second (30,000/s in 1.5 cores needs 20,000); peak RSS "
              f"{max(rss for _, rss, _ in sampler.samples):.0f} MB, SIGTERM -> exit {took:.1f}s")
        report_live_trades(folder / "market.duckdb", symbols, published)
        log = (path.parent / "stream.err").read_text()
        print(f"log: {log.count('live heal')} 'live heal', {log.count('live disconnected')} 'live disconnected'")


def report_live_trades(path: Path, symbols: list[str], published: int) -> None:
    """Each symbol's trades in DuckDB against the tape: stored once each, none missing before the last stored."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as connection:
        rows = [connection.execute("SELECT count(*), count(DISTINCT trade_id), coalesce(max(CAST(trade_id AS BIGINT))"
                                   " + 1, ?) FROM trades WHERE symbol = ?", [FIRST_TRADE, symbol]).fetchone()
                for symbol in symbols]
    stored = sum(count for count, _, _ in rows)
    duplicate = sum(count - distinct for count, distinct, _ in rows)
    missing = sum(end - FIRST_TRADE - distinct for _, distinct, end in rows)
    print(f"trades stored: {stored:,} of {published * len(symbols):,} on the tape at the stop (the last ones were "
          f"in flight at SIGTERM: the next start heals them); duplicate {duplicate}, missing before the last "
          f"stored {missing}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("latency", "disconnects", "soak", "trades"))
    parser.add_argument("--symbols", type=int, help="streams (default 200 kline streams, 20 aggTrade streams)")
    parser.add_argument("--timeframe", default="1s")
    parser.add_argument("--seconds", type=float, default=60, help="how long the stream runs (disconnects: "
                        "on after the last reconnect)")
    parser.add_argument("--warmup", type=float, default=10, help="seconds left out of latency and CPU figures "
                        "(start-up and the first heal)")
    parser.add_argument("--history", type=int, default=60, help="bars before now the pipeline starts at")
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--drop-every", type=float, default=5.0, help="seconds from a reconnect to the next cut")
    parser.add_argument("--minutes", type=float, default=30, help="soak length")
    parser.add_argument("--rate", type=float, default=30_000, help="trades: aggTrade messages a second, in all")
    parser.add_argument("--sample", type=float, default=1.0, help="seconds between RSS/CPU samples")
    args = parser.parse_args()
    args.symbols = args.symbols or (20 if args.mode == "trades" else 200)
    print(f"$ python bench/bench_stream.py {' '.join(sys.argv[1:])}  ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f})", flush=True)
    if args.mode == "latency":
        run_klines(args, args.seconds)
    elif args.mode == "disconnects":
        run_klines(args, args.seconds, forced_drops(args.drops, args.drop_every))
    elif args.mode == "soak":
        report_soak(run_klines(args, args.minutes * 60), args.minutes)
    else:
        run_trades(args)


if __name__ == "__main__":
    main()
