"""What ``--cluster`` costs and buys: a CPU-bound archive backfill in-process, on ``local:1`` and on ``local:2``,
the overhead of one unit end to end, and of one request under a cluster-wide rate budget.

    python bench/bench_cluster.py                       # 4 coins x 7 days of hourly l2Book files, 1,800 snapshots each
    python bench/bench_cluster.py --coins 4 --days 14 --repeat 2

The source is ``hyperliquid_archive`` building 1m mid-price bars from LZ4 l2Book snapshots: parsing is all the
work and the output is small (60 bars an hour), so the driver and its sink are not the limit. Its files are in
the source's cache already (moto's S3 serves only the day listing), as a rerun or a second pipeline finds them.
A backfill chunk is a day (``chunk = 1440``): 24 files, a unit of work. Each run is a fresh ``python -m etl``
whose peak RSS is the driver's own ``ru_maxrss`` (a local cluster's workers are processes of their own):

  in-process  threads of one process (``concurrency`` 2), polars with its own thread pool
  local:1     one worker process, one thread, ``POLARS_MAX_THREADS=1`` (driver and worker)
  local:2     two of them

Throughput is snapshots parsed per second of the run's own duration (from the ledger: the cluster's start-up,
about 2 s, is left out; the wall time is printed beside it). Beside it, before and after, the machine's own
ceiling: how much more two busy Python processes get done than one (cores shared with other processes, or
hyperthreads, put it below 2). Then:

  unit overhead  ``--units`` streams of one row each (the ``files`` source), in-process and on ``local:1``:
                 milliseconds per unit of the run's duration, minus the in-process figure's share
  rate budget    ``RateLimiter.acquire`` here vs a worker's ``SharedLimiter.acquire`` (a reservation on the
                 scheduler, ``rate_budget = "cluster"``) vs a ``distributed.Semaphore`` acquire + release
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.testing import single_pipeline, write_pipeline  # noqa: E402
from etl.timeframes import iso  # noqa: E402
from fixtures.fake_hyperliquid_archive import _capture_time, compress, snapshot  # noqa: E402
from fixtures.s3_server import S3Server, fake_credentials  # noqa: E402

START = 1_685_577_600_000  # 2023-06-01
HOUR, DAY = 3_600_000, 86_400_000
BUCKET = "hyperliquid-archive"
COINS = ("BTC", "ETH", "SOL", "ARB", "DOGE", "AVAX", "LINK", "OP")
MEASURE = ("import atexit, resource, sys; usage = lambda: resource.getrusage(resource.RUSAGE_SELF); "
           "atexit.register(lambda: print('peak_rss_kb', usage().ru_maxrss, 'cpu_s', usage().ru_utime "
           "+ usage().ru_stime, file=sys.stderr)); "
           "from etl.cli import cli; cli()")


def hour_lines(coin: str, hour: int, snapshots: int, templates: list[tuple[str, str, str]]) -> list[str]:
    """An hour's l2Book lines, stamped into a few pre-rendered books (``snapshot`` per line takes too long)."""
    spacing = HOUR // snapshots
    lines = []
    for index in range(snapshots):
        exchange = hour + index * spacing + 37
        head, middle, tail = templates[index % len(templates)]
        lines.append(f"{head}{_capture_time(exchange + 600, index)}{middle}{exchange}{tail}")
    return lines


def templates(coin: str) -> list[tuple[str, str, str]]:
    """Books of ``coin`` with their two timestamps cut out: capture time (a string) and exchange time."""
    found = []
    for variant in range(8):
        line = snapshot(coin, 1_111_111_111_111, 1_000_000_000_000, variant)
        capture = _capture_time(1_000_000_000_000, variant % 1_000_000)
        head, rest = line.split(capture)
        middle, tail = rest.split("1111111111111")
        found.append((head, middle, tail))
    return found


def fill_cache(cache: Path, s3: S3Server, coins: tuple[str, ...], days: int, snapshots: int) -> int:
    """Hour files in the cache for the window and the look-ahead hour; one small object per day in the bucket,
    which is all the source lists. Returns the snapshots of the window."""
    from etl_hyperliquid.catalog import l2_key

    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    for day in range(days + 1):
        client.put_object(Bucket=BUCKET, Key=l2_key("_", START + day * DAY), Body=b"")
    for coin in coins:
        books = templates(coin)
        for hour in range(START, START + days * DAY + HOUR, HOUR):
            path = cache / BUCKET / l2_key(coin, hour)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(compress(hour_lines(coin, hour, snapshots, books)))
    return len(coins) * days * 24 * snapshots


class Run:
    """One backfill's figures: wall and in-run seconds, the driver's peak RSS (MB) and CPU-seconds, and from the
    ledger the seconds its units took, summed (over the run's seconds: how many workers were busy)."""

    def __init__(self, path: Path, wall: float, stderr: str):
        with sqlite3.connect(path.parent / ".etl" / "ledger.db") as ledger:
            (self.seconds,) = ledger.execute("SELECT duration_s FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()
            self.units, self.unit_seconds = ledger.execute(
                "SELECT count(*), sum(seconds) FROM unit_runs WHERE run_id = "
                "(SELECT id FROM runs ORDER BY rowid DESC LIMIT 1)").fetchone()
        measured = re.search(r"peak_rss_kb (\d+) cpu_s ([\d.]+)", stderr)
        self.wall = wall
        self.rss = int(measured.group(1)) / 1024 if measured else 0.0
        self.cpu = float(measured.group(2)) if measured else 0.0

    def __str__(self) -> str:
        return (f"{self.seconds:.2f}s in the run, {self.wall:.2f}s wall, driver peak RSS {self.rss:.0f} MB and "
                f"{self.cpu:.1f} CPU-s; {self.units} units of {self.unit_seconds / self.units:.2f}s, "
                f"{self.unit_seconds / self.seconds:.2f} busy on average")


def etl(path: Path, start: int, end: int, cluster: str | None, env: dict[str, str]) -> Run:
    """Run the backfill in a fresh process and measure it."""
    began = time.monotonic()
    extra = ["--cluster", cluster] if cluster else []
    done = subprocess.run([sys.executable, "-c", MEASURE, "--log-format", "json", "backfill", str(path),
                           "--pipeline", "bench", "--start", iso(start), "--end", iso(end), *extra],
                          capture_output=True, text=True, env={**os.environ, **env})
    if done.returncode != 0:
        sys.exit(f"etl failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    return Run(path, time.monotonic() - began, done.stderr)


def modes(workers: int) -> dict[str, tuple[str | None, dict[str, str]]]:
    one_thread = {"POLARS_MAX_THREADS": "1"}
    return {"in-process": (None, {}), **{f"local:{n}": (f"local:{n}", one_thread) for n in range(1, workers + 1)}}


def archive_runs(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """Snapshots per second of each mode, best of ``--repeat``."""
    coins = COINS[: args.coins]
    with S3Server() as s3:
        began = time.monotonic()
        snapshots = fill_cache(folder / "cache", s3, coins, args.days, args.snapshots)
        size = sum(path.stat().st_size for path in (folder / "cache").rglob("*.lz4"))
        print(f"{len(coins)} coins x {args.days} days x 24 hourly files x {args.snapshots:,} snapshots = "
              f"{snapshots:,} snapshots, {size / 1e6:.0f} MB LZ4 (built in {time.monotonic() - began:.0f}s)")
        source = {"plugin": "hyperliquid_archive", "dataset": "ohlcv", "symbols": list(coins), "timeframes": ["1m"],
                  "endpoint_url": s3.url, "cache_dir": str(folder / "cache")}
        best: dict[str, float] = {}
        for attempt in range(args.repeat):
            for name, (cluster, env) in modes(args.workers).items():
                run = folder / f"{name.replace(':', '')}-{attempt}"
                data = single_pipeline(source, [{"plugin": "duckdb", "path": "bench.duckdb"}], name="bench",
                                       chunk=1_440, concurrency=args.workers)
                done = etl(write_pipeline(run, data), START, START + args.days * DAY, cluster,
                           {**fake_credentials(), **env})
                rate = snapshots / done.seconds
                best[name] = max(best.get(name, 0.0), rate)
                print(f"  {name:<10} {rate:>10,.0f} snapshots/s  ({done}; load {os.getloadavg()[0]:.1f})")
    return best


def unit_overhead(args: argparse.Namespace, folder: Path) -> None:
    """Milliseconds per one-row unit, end to end, in-process and on one worker."""
    data_dir = folder / "one-row"
    data_dir.mkdir()
    symbols = [f"S{index:04d}" for index in range(args.units)]
    for symbol in symbols:
        (data_dir / f"{symbol}.csv").write_text("ts,open,high,low,close,volume\n"
                                                f"{START},1.0,1.0,1.0,1.0,1.0\n")
    source = {"plugin": "files", "path": str(data_dir / "{symbol}.csv"), "symbols": symbols, "timeframes": ["1m"]}
    figures = {}
    for name, cluster in (("in-process", None), ("local:1", "local:1")):
        data = single_pipeline(source, [{"plugin": "duckdb", "path": "bench.duckdb"}], name="bench", concurrency=1)
        done = etl(write_pipeline(folder / f"units-{name.replace(':', '')}", data), START, START + HOUR, cluster,
                   {"POLARS_MAX_THREADS": "1"})
        figures[name] = done.seconds / args.units * 1000
        print(f"  {name:<10} {figures[name]:6.1f} ms per one-row unit ({args.units} units in {done.seconds:.2f}s, "
              f"driver peak RSS {done.rss:.0f} MB)")
    print(f"  the cluster adds {figures['local:1'] - figures['in-process']:.1f} ms per unit")


def machine_ceiling(workers: int) -> float:
    """How much more ``workers`` busy processes get done than one, on this machine now: the most ``local:N`` can
    reach over ``local:1`` whatever the engine does (a VM's cores may be hyperthreads, other processes run)."""
    loop = "sum(i * i for i in range(15_000_000))"
    walls = {}
    for count in (1, workers):
        began = time.monotonic()
        for process in [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]:
            process.wait()
        walls[count] = time.monotonic() - began
    return workers * walls[1] / walls[workers]


def budget_overhead(calls: int) -> None:
    """Microseconds per request: a local bucket, the scheduler's shared bucket, a Dask semaphore."""
    from distributed import Client, LocalCluster

    from etl.ratelimit import RateLimiter

    local = RateLimiter(1e12, 1.0)
    began = time.perf_counter()
    for _ in range(calls):
        local.acquire(1)
    print(f"  local bucket       {(time.perf_counter() - began) / calls * 1e6:8.1f} us per request")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      worker_dashboard_address=None) as cluster, \
            Client(cluster) as client:
        from etl.cluster_budget import BudgetBank

        client.register_plugin(BudgetBank(), name=BudgetBank.name)
        for name, function in (("shared bucket", _shared_bucket), ("dask Semaphore", _semaphore)):
            seconds = client.submit(function, calls, pure=False).result()
            print(f"  {name:<18} {seconds / calls * 1e6:8.1f} us per request")


def _shared_bucket(calls: int) -> float:
    from distributed import get_worker

    from etl.cluster_budget import share_on, stop_sharing
    from etl.ratelimit import rate_limiter

    share_on(get_worker())
    limiter = rate_limiter("bench", 1e12, 1.0)
    began = time.perf_counter()
    for _ in range(calls):
        limiter.acquire(1)
    stop_sharing()
    return time.perf_counter() - began


def _semaphore(calls: int) -> float:
    from distributed import Semaphore

    semaphore = Semaphore(max_leases=1_000_000, name="bench")
    began = time.perf_counter()
    for _ in range(calls):
        semaphore.acquire()
        semaphore.release()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=4)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--snapshots", type=int, default=1_800, help="per hourly file (default 1,800: one per 2 s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--units", type=int, default=200, help="one-row units for the overhead per unit")
    parser.add_argument("--calls", type=int, default=2_000, help="requests for the rate-budget overhead")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.workers} busy Python processes "
          f"do {machine_ceiling(args.workers):.2f}x what one does")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        best = archive_runs(args, folder)
        one = best.get("local:1", 0.0)
        for mode, rate in best.items():
            print(f"{mode:<10} {rate:>10,.0f} snapshots/s = {rate / one:.2f}x local:1")
        print(f"machine now: {args.workers} busy processes do {machine_ceiling(args.workers):.2f}x what one does")
        print("overhead per unit:")
        unit_overhead(args, folder)
    print("rate budget, per request:")
    budget_overhead(args.calls)


if __name__ == "__main__":
    main()
