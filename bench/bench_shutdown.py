"""SIGTERM -> exit of ``etl stream``: how long a real ``python -m etl stream`` takes to stop, stopped at random
moments, with many streams, optionally on a machine made busy by CPU-bound processes (DESIGN 9: "SIGTERM/SIGINT
commit what is closed and exit 0 within 5 s").

    python bench/bench_shutdown.py                        # 10 stops of 200 kline (1s) + 20 aggTrade streams
    python bench/bench_shutdown.py --runs 20 --load 4     # with 4 busy loops beside it (2 cores: load ~5)
    python bench/bench_shutdown.py --phases               # -v: when each shutdown phase ended, after the signal

One process follows two pipelines against local fakes of Binance (``bench_stream``'s): ``klines``, 200 symbols of
1-second bars (1,200 frames a second) into ``klines.duckdb``, and ``trades``, 20 symbols of aggregate trades
(``--rate`` a second in all) into ``trades.duckdb``. Each run starts the stream in the same folder (so every start
but the first heals from the checkpoint the last stop left), waits a random ``--min``..``--max`` seconds (the
start-up heal included), sends SIGTERM and times the exit. Then each stream's checkpoint must equal what DuckDB
holds: its row count, and its next bar (or last trade's millisecond) the one after the last stored row.

``--load N`` starts N ``python -c "while 1: pass"`` processes for the whole bench (stopped at its end). Each stop's
CPU seconds (the process's, from the signal to its exit) are what the machine's load moves least. ``--phases`` runs
the stream with ``-v`` and prints, per shutdown phase (the debug lines ``stream shutdown``), its end after the signal:
p50 and max over the runs. ``-v`` also logs every websocket frame, which slows the stream: quote exit times from runs
without ``--phases``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_stream import (  # noqa: E402
    TapeRest,
    TapeWebsocket,
    TradeTape,
    binance_source,
    cpu_seconds,
    percentile,
    streaming,
    symbol_names,
)

from etl.testing import write_pipeline  # noqa: E402
from etl.timeframes import now_ms, timeframe_ms  # noqa: E402
from fixtures.fake_binance_ws import FakeBinanceWebsocket  # noqa: E402
from tests.live.harness import checkpoint_mismatches  # noqa: E402

TIMEFRAME = "1s"
HUNG_SECONDS = 60


@contextlib.contextmanager
def busy(processes: int) -> Iterator[None]:
    """``processes`` CPU-bound Python loops while the block runs, each stopped (by its pid) at its end."""
    loops = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def write_pipelines(folder: Path, rest: TapeRest, klines: FakeBinanceWebsocket, trades: TapeWebsocket,
                    args: argparse.Namespace, start: int) -> Path:
    symbols = symbol_names(args.klines)
    pipelines = {
        "klines": {"source": binance_source(rest, klines, symbols, TIMEFRAME, start),
                   "sinks": [{"plugin": "duckdb", "path": "klines.duckdb"}]},
        "trades": {"source": binance_source(rest, trades, symbols[:args.trades], "", start, dataset="trades"),
                   "sinks": [{"plugin": "duckdb", "path": "trades.duckdb"}]},
    }
    return write_pipeline(folder, {"pipelines": pipelines})


@dataclass
class Stop:
    """One stop: the exit code, seconds from SIGTERM to exit, CPU seconds the process spent in them (the figure
    the machine's load moves least), and the signal's wall-clock instant."""

    code: int
    seconds: float
    cpu: float
    sent: float


def stop_once(path: Path, after: float, verbose: bool) -> Stop:
    """Start ``etl stream`` and SIGTERM it ``after`` seconds later."""
    with streaming(path, *(["-v"] if verbose else [])) as process:
        time.sleep(after)
        cpu, sent, began = cpu_seconds(process.pid), time.time(), time.monotonic()
        process.send_signal(signal.SIGTERM)
        while not (ended := os.wait4(process.pid, os.WNOHANG))[0]:
            if time.monotonic() - began > HUNG_SECONDS:
                hung(process.pid)
                ended = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        took = time.monotonic() - began
        process.returncode = os.waitstatus_to_exitcode(ended[1])
        return Stop(process.returncode, took, ended[2].ru_utime + ended[2].ru_stime - cpu, sent)


def hung(pid: int) -> None:
    """A stop that did not end: its threads' stacks (with py-spy, when installed), then SIGKILL."""
    print(f"etl stream (pid {pid}) still running {HUNG_SECONDS}s after SIGTERM", flush=True)
    if shutil.which("py-spy"):
        subprocess.run(["py-spy", "dump", "--pid", str(pid)], check=False)
    os.kill(pid, signal.SIGKILL)


def phases(log: Path, sent: float) -> dict[str, float]:
    """Seconds from the signal to each ``stream shutdown`` line of the log (the last one of each phase)."""
    ends = {}
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if event.get("event") == "stream shutdown":
                label = f"{event.get('pipeline', '-')}: {event['phase']}"
                ends[label] = datetime.fromisoformat(event["timestamp"]).timestamp() - sent
    return ends


def report(stops: list[Stop], problems: int, ends: list[dict[str, float]]) -> None:
    times, cpu = [stop.seconds for stop in stops], [stop.cpu for stop in stops]
    print(f"SIGTERM -> exit over {len(times)} stops: p50 {percentile(times, .5):.2f}s, p95 "
          f"{percentile(times, .95):.2f}s, max {max(times):.2f}s; over 5 s: {sum(t > 5 for t in times)}; CPU "
          f"seconds p50 {percentile(cpu, .5):.2f}, max {max(cpu):.2f}; exit codes "
          f"{sorted({stop.code for stop in stops})}; checkpoint != stored: {problems} streams")
    for label in sorted({label for run in ends for label in run}, key=lambda name: percentile(
            [run[name] for run in ends if name in run], .5)):
        values = [run[label] for run in ends if label in run]
        print(f"  {label:<36} ends p50 {percentile(values, .5):5.2f}s  max {max(values):5.2f}s after the signal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="stops (each a fresh start in the same folder)")
    parser.add_argument("--klines", type=int, default=200, help="kline streams (1-second bars)")
    parser.add_argument("--trades", type=int, default=20, help="aggTrade streams (the first kline symbols)")
    parser.add_argument("--rate", type=float, default=2_000, help="aggTrade messages a second, in all")
    parser.add_argument("--min", type=float, default=2.0, help="fewest seconds from start to SIGTERM")
    parser.add_argument("--max", type=float, default=12.0, help="most seconds from start to SIGTERM")
    parser.add_argument("--load", type=int, default=0, help="CPU-bound processes beside the stream")
    parser.add_argument("--phases", action="store_true", help="run with -v; print when each phase ended")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)
    print(f"$ python bench/bench_shutdown.py {' '.join(sys.argv[1:])}  ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f})", flush=True)
    step = timeframe_ms(TIMEFRAME)
    tape = TradeTape(now_ms() - 60_000, max(1, int(args.rate / args.trades)))
    stops: list[Stop] = []
    ends: list[dict[str, float]] = []
    problems = 0
    with TapeRest(tape, symbol_names(args.klines)) as rest, FakeBinanceWebsocket(rest) as klines, \
            TapeWebsocket(tape) as trades, tempfile.TemporaryDirectory() as tmp, busy(args.load):
        path = write_pipelines(Path(tmp), rest, klines, trades, args, now_ms() // step * step - 60 * step)
        for run in range(args.runs):
            after = random.uniform(args.min, args.max)
            stop = stop_once(path, after, args.phases)
            wrong = [*checkpoint_mismatches(path.parent, "klines", step, "klines.duckdb"),
                     *checkpoint_mismatches(path.parent, "trades", 0, "trades.duckdb", "trades")]
            problems += len(wrong)
            stops.append(stop)
            ends.append(phases(path.parent / "stream.err", stop.sent))
            print(f"run {run + 1}: SIGTERM after {after:.1f}s -> exit {stop.code} in {stop.seconds:.2f}s, "
                  f"{stop.cpu:.2f} CPU-s (load {os.getloadavg()[0]:.1f}){'; ' + '; '.join(wrong[:3]) if wrong else ''}",
                  flush=True)
            if stop.code != 0:
                print((path.parent / "stream.err").read_text()[-2000:])
    report(stops, problems, ends)


if __name__ == "__main__":
    main()
