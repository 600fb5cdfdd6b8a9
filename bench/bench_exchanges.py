"""Rate-limit efficiency of the exchange sources: a backfill of many symbols against a local fake that enforces
the exchange's documented limit, through the real ``etl backfill`` command.

The fake counts weight in a sliding window (stricter than Binance's calendar minute) and answers 429 with
Retry-After past the limit. The figure of merit is the candles per minute the backfill achieves, against
the candles per minute the limit allows (limit / weight of a page x candles per page), with zero 429s.

    python bench/bench_exchanges.py                       # Binance spot, limit scaled to 1200/min, ~1 minute
    python bench/bench_exchanges.py --limit 6000          # the documented limit (CPU-bound on small machines)
    python bench/bench_exchanges.py --exchange bybit      # Bybit: requests per 5 s, scaled to 50 (600 documented)
    python bench/bench_exchanges.py --advertised          # the source is not told the limit: it reads the one
                                                          # the fake advertises (exchangeInfo, X-Bapi-Limit)

The limit is scaled down by default so the fake, the ``etl`` process and DuckDB are not what limits the run
on a 2-core machine: the point is the pacing, which does not depend on the scale.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.testing import single_pipeline, write_pipeline  # noqa: E402
from fixtures.fake_binance import FakeBinance  # noqa: E402
from fixtures.fake_bybit import FakeBybit  # noqa: E402

START = 1_704_067_200_000  # 2024-01-01
MINUTE = 60_000
PAGE = 1000  # candles per request: Binance spot klines (weight 2), Bybit kline (1 request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchange", choices=("binance", "bybit"), default="binance")
    parser.add_argument("--limit", type=int, help="Binance: weight per minute (default 1200, documented 6000); "
                        "Bybit: requests per 5 seconds (default 50, documented 600)")
    parser.add_argument("--advertised", action="store_true",
                        help="do not give the source the limit (rate_limit): it starts from the documented one "
                        "and must pace by what the fake advertises and reports")
    parser.add_argument("--symbols", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=60, help="how long the backfill should take at the limit")
    parser.add_argument("--concurrency", type=int, default=4, help="streams fetched at once")
    parser.add_argument("--batch-rows", type=int, default=10_000,
                        help="rows per committed batch: small batches spread the writes over the run")
    args = parser.parse_args()

    binance = args.exchange == "binance"
    limit = args.limit or (1200 if binance else 50)
    requests_per_minute = limit / 2 if binance else limit * 12
    allowed = requests_per_minute * PAGE
    pages = math.ceil(requests_per_minute * args.seconds / 60 / args.symbols)
    symbols = tuple(f"S{index:03d}USDT" for index in range(args.symbols))
    end = START + pages * PAGE * MINUTE
    fake = FakeBinance(spot=symbols, spot_weight_limit=limit) if binance else FakeBybit(linear=symbols,
                                                                                         requests_per_5s=limit)
    source = {"plugin": args.exchange, "symbols": list(symbols), "timeframes": ["1m"], "start": "2024-01-01",
              "base_url": "", **({} if args.advertised else {"rate_limit": limit}),
              **({} if binance else {"market": "linear"})}
    unit = "weight per minute" if binance else "requests per 5 s"
    documented = 6000 if binance else 600
    told = "advertised by the fake only" if args.advertised else "given to the source as rate_limit"
    print(f"{args.exchange}: {len(symbols)} symbols x {pages * PAGE:,} 1m candles; limit {limit:,} {unit}, {told} "
          f"(documented {documented:,})")
    print(f"allowed by the limit: {allowed:,.0f} candles/min ({PAGE} candles per request"
          f"{', weight 2' if binance else ''})")

    with fake, tempfile.TemporaryDirectory() as folder:
        source["base_url"] = fake.url
        path = write_pipeline(Path(folder), single_pipeline(
            source, [{"plugin": "duckdb", "path": "bench.duckdb"}], name="bench", concurrency=args.concurrency,
            batch_rows=args.batch_rows))
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "etl", "--log-format", "json", "-q", "backfill", str(path), "--pipeline", "bench",
             "--start", "2024-01-01", "--end", _iso(end)], capture_output=True, text=True)
        finished = time.monotonic()
        elapsed = finished - began
        if not fake.arrivals:
            sys.exit("the fake saw no request")
        if done.returncode:
            sys.exit(f"etl backfill failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
        candles = _count(Path(folder) / "bench.duckdb")
        data_path = "/api/v3/klines" if binance else "/v5/market/kline"
        data = [stamp for stamp, request_path in fake.arrivals if request_path == data_path]
        window = fake.weight["spot"] if binance else fake.window

    expected = len(symbols) * pages * PAGE
    first_request = fake.arrivals[0][0]
    backfill = candles / (finished - first_request) * 60
    whole = candles / elapsed * 60
    steady = (len(data) - 1) * PAGE / (data[-1] - data[0]) * 60 if len(data) > 1 else 0.0
    print(f"stored {candles:,} of {expected:,} candles")
    print(f"backfill (first request, market metadata included, to the last write and exit: "
          f"{finished - first_request:.1f} s): {backfill:,.0f} candles/min = {backfill / allowed:.1%} of the limit")
    print(f"with the interpreter's start-up and imports ({first_request - began:.1f} s, {elapsed:.1f} s in all): "
          f"{whole:,.0f} candles/min = {whole / allowed:.1%}")
    print(f"steady state (first to last data request, {len(data)} requests): {steady:,.0f} candles/min = "
          f"{steady / allowed:.1%}")
    print(f"429 responses: {fake.statuses[429]}; 403 responses: {fake.statuses[403]}; peak use of the limit "
          f"in any sliding window: {window.peak:,.0f} of {limit:,} ({window.peak / limit:.1%})")


def _iso(ms: int) -> str:
    from etl.timeframes import iso

    return iso(ms)


def _count(db: Path) -> int:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute("SELECT count(*) FROM ohlcv").fetchone()[0]


if __name__ == "__main__":
    main()
