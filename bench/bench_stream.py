"""Live capture: ``etl stream`` of Binance klines (and aggregate trades) into DuckDB, against the local fakes of
Binance's REST API and websocket streams, run as a real ``python -m etl stream`` process.

    python bench/bench_stream.py latency                    # 200 symbols x 1s bars for 60 s: closing frame -> commit
    python bench/bench_stream.py disconnects --drops 20     # 20 forced disconnects; stored == `etl backfill` oracle
    python bench/bench_stream.py soak --minutes 30          # RSS of the process every 5 s: peak, growth 5 -> 30 min
    python bench/bench_stream.py trades --rate 30000        # aggTrade frames at a target rate: messages/s, cores

How latency is measured. DuckDB lets one process hold a file read-write and no other process open it, not even
read-only, so the bench cannot poll the table. It polls the pipeline's checkpoint file instead (every 10 ms): the
committer moves a stream's checkpoint past a bar only after every sink's transaction holding that bar has
committed, and replaces the file atomically. So "the checkpoint of BTCUSDT passed bar t, seen at instant c" means
the row was visible in DuckDB at c at the latest: the figure is an upper bound (by the poll interval and the
checkpoint's own write). The start is the instant the fake venue built the bar's closing frame (``x: true``), just
before sending it. Both instants are this process's wall clock.

Why 1-second bars in real time, not 1-minute bars on the accelerated ``ETL_CLOCK``: 200 symbols x 1s bars close
200 bars every second, the load of 200 x 1m bars times 60, while every duration the code reads (the fake's 334 ms
close delay, ``flush_ms``, the 10 s overdue heal, backoffs) stays a real duration; on the accelerated clock those
shrink 60-fold and would measure the clock, not the path. ``--timeframe 1m --speed 60`` runs that variant anyway.
The fake sends each stream's forming bar every 200 ms (Binance: every 1-2 s), so the socket carries 1,000 forming
updates a second on top of the 200 closing frames.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from etl.testing import single_pipeline, write_pipeline  # noqa: E402
from etl.timeframes import iso, now_ms, timeframe_ms  # noqa: E402
from fixtures.fake_binance import FakeBinance  # noqa: E402
from fixtures.fake_binance_ws import FakeBinanceWebsocket  # noqa: E402

SINKS = [{"plugin": "duckdb", "path": "market.duckdb"}]
POLL_SECONDS = 0.01


class TimedWebsocket(FakeBinanceWebsocket):
    """The Binance websocket fake, noting the wall-clock instant each bar's closing frame was built (then sent)."""

    def __init__(self, rest: FakeBinance):
        super().__init__(rest)
        self.sent: dict[tuple[str, int], float] = {}

    def frame(self, feed: Any, bar: int, now: int | None) -> str:
        text = super().frame(feed, bar, now)
        if now is None:
            self.sent.setdefault((feed.symbol, bar), time.time())
        return text


class CheckpointWatch:
    """Polls a checkpoint file; notes the wall-clock instant each stream's checkpoint first passed each bar."""

    def __init__(self, path: Path, step: int, interval: float = POLL_SECONDS):
        self.path, self.step, self.interval = path, step, interval
        self.committed: dict[tuple[str, int], float] = {}
        self._next: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CheckpointWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

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


class Sampler:
    """RSS and CPU time of a process, every ``interval`` seconds, from /proc."""

    def __init__(self, pid: int, interval: float):
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float, float]] = []  # (seconds since start, RSS MB, CPU seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.began = time.monotonic()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        ticks = os.sysconf("SC_CLK_TCK")
        while not self._stop.wait(self.interval):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
                fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return
            rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
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


def symbol_names(count: int) -> list[str]:
    return [f"S{index:03d}USDT" for index in range(count)]


def env(speed: float | None) -> dict[str, str]:
    """The child's environment: this worktree's code first; the accelerated clock if asked."""
    paths = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])
    extra = {"ETL_CLOCK": os.environ["ETL_CLOCK"]} if speed else {}
    return {**os.environ, "PYTHONPATH": paths, **extra}


def pipeline(folder: Path, rest: FakeBinance, ws: Any, symbols: list[str], timeframe: str, start: int,
             dataset: str = "ohlcv") -> Path:
    source = {"plugin": "binance", "symbols": symbols, "start": iso(start), "base_url": rest.url, "ws_url": ws.url,
              "dataset": dataset, **({"timeframes": [timeframe]} if dataset == "ohlcv" else {})}
    return write_pipeline(folder, single_pipeline(source, SINKS, name="bench"))


def start_stream(path: Path, speed: float | None) -> subprocess.Popen[bytes]:
    """``python -m etl stream``, its output in files beside the pipeline (a pipe nobody reads would block it)."""
    out, err = (open(path.parent / name, "wb") for name in ("stream.out", "stream.err"))  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "etl", "--log-format", "json", "stream", str(path)],
                            stdout=out, stderr=err, env=env(speed), cwd=path.parent)


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
                          start: int, speed: float | None) -> dict[str, int]:
    """Backfill the window the stream covered into a second DuckDB and compare, row for row, up to the earliest
    of the symbols' last stored bars (a stream stopped by SIGTERM may be a bar behind another: the next start
    heals it). Missing, duplicate and extra rows, and rows whose values differ."""
    import polars as pl

    live = stored_keys(folder / "market.duckdb")
    last = live.group_by("symbol").agg(pl.col("ts").max())["ts"].min()
    end = int(last.timestamp() * 1000) + timeframe_ms(timeframe)
    oracle_path = pipeline(folder.parent / "oracle", rest, ws, symbols, timeframe, start)
    done = subprocess.run([sys.executable, "-m", "etl", "-q", "backfill", str(oracle_path), "--pipeline", "bench",
                           "--start", iso(start), "--end", iso(end)], env=env(speed), capture_output=True, text=True)
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


def clock(args: argparse.Namespace) -> None:
    """Set the accelerated clock for the fakes (this process) and the stream (its environment)."""
    if args.speed:
        os.environ["ETL_CLOCK"] = f"{args.speed:g}@{int(time.time() * 1000)}"


def sleep(ws: Any, seconds: float) -> None:
    time.sleep(seconds)


def run_klines(args: argparse.Namespace, seconds: float, during: Any = sleep) -> Sampler:
    """One ``etl stream`` run of ``--symbols`` kline streams for ``seconds``: latency, CPU, RSS, and the oracle."""
    clock(args)
    symbols = symbol_names(args.symbols)
    step = timeframe_ms(args.timeframe)
    with FakeBinance(spot=tuple(symbols)) as rest, TimedWebsocket(rest) as ws, \
            tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "live"
        start = now_ms() // step * step - args.history * step
        path = pipeline(folder, rest, ws, symbols, args.timeframe, start)
        process = start_stream(path, args.speed)
        checkpoint = folder / ".etl" / "checkpoints" / "bench.json"
        with Sampler(process.pid, args.sample) as sampler, CheckpointWatch(checkpoint, step) as watch:
            began = time.time()
            during(ws, seconds)
        took = stop(process, path)
        report_latency(ws.sent, watch.committed, began + args.warmup, began + seconds - 1, args.warmup)
        report_process(sampler, args.warmup, took, ws)
        report_oracle(compare_with_backfill(folder, rest, ws, symbols, args.timeframe, start, args.speed))
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
    """During the run: cut the connection abruptly ``drops`` times, ``every`` seconds apart (after a reconnect)."""

    def during(ws: Any, seconds: float) -> None:
        began = time.monotonic()
        for _ in range(drops):
            time.sleep(every)
            connections = ws.connections
            ws.drop(1)
            while ws.connections <= connections and time.monotonic() - began < seconds:
                time.sleep(0.05)
        time.sleep(max(0.0, seconds - (time.monotonic() - began)))
        print(f"forced disconnects: {drops} ({ws.connections} connections in all)")

    return during


def report_soak(sampler: Sampler, minutes: float) -> None:
    early, late = sampler.rss_at(min(300, minutes * 60 / 6)), sampler.samples[-1][1]
    print(f"RSS: at {min(5.0, minutes / 6):g} min {early:.0f} MB, at {minutes:g} min {late:.0f} MB: "
          f"growth {(late - early) / early:+.1%} (target < 5%); peak "
          f"{max(rss for _, rss, _ in sampler.samples):.0f} MB (target < 300 MB)")
    minutes_seen = range(1, int(sampler.samples[-1][0] // 60) + 1)
    print("RSS by minute (MB): " + " ".join(f"{sampler.rss_at(minute * 60 - 1):.0f}" for minute in minutes_seen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("latency", "disconnects", "soak", "trades"))
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--timeframe", default="1s")
    parser.add_argument("--speed", type=float, help="run the clock this many times faster (ETL_CLOCK), e.g. 60 "
                        "with --timeframe 1m")
    parser.add_argument("--seconds", type=float, default=60, help="how long the stream runs (latency, disconnects)")
    parser.add_argument("--warmup", type=float, default=10, help="seconds left out of latency and CPU figures "
                        "(start-up and the first heal)")
    parser.add_argument("--history", type=int, default=60, help="bars before now the pipeline starts at")
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--drop-every", type=float, default=3.0)
    parser.add_argument("--minutes", type=float, default=30, help="soak length")
    parser.add_argument("--sample", type=float, default=1.0, help="seconds between RSS/CPU samples")
    args = parser.parse_args()
    print(f"$ python bench/bench_stream.py {' '.join(sys.argv[1:])}  ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f})", flush=True)
    if args.mode == "latency":
        run_klines(args, args.seconds)
    elif args.mode == "disconnects":
        run_klines(args, max(args.seconds, args.drops * args.drop_every * 1.5), forced_drops(args.drops,
                                                                                          args.drop_every))
    elif args.mode == "soak":
        report_soak(run_klines(args, args.minutes * 60), args.minutes)


if __name__ == "__main__":
    main()
