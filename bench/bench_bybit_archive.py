"""How fast the ``bybit_archive`` source reads a day file of public.bybit.com: gzip CSV bytes to trades rows.

    python bench/bench_bybit_archive.py                    # one day of 500,000 linear trades, best of 5
    python bench/bench_bybit_archive.py --trades 2000000 --repeat 3

The file is the fake archive's (``fixtures/fake_bybit_public.py``: the real header, RPI column, stamps with up
to four decimals). ``read_day`` inflates it (gzip checks CRC-32 and length), parses the CSV with polars, cuts
the stamps to ms from their text, and runs every row check. The reference beside it is the plain way:
``gzip.decompress`` + ``csv.reader`` + ``float`` per row, no checks. Figures: rows/s and compressed MB/s.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "plugins"))

from etl_bybit.archive_trades import read_day  # noqa: E402

from etl.timeframes import DAY, parse_time  # noqa: E402
from fixtures.fake_bybit_public import FakeBybitPublic  # noqa: E402


def reference(body: bytes) -> int:
    rows = 0
    reader = csv.reader(io.StringIO(gzip.decompress(body).decode()))
    next(reader)
    for row in reader:
        int(float(row[0]) * 1000), float(row[3]), float(row[4]), row[2].lower(), row[6]
        rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    day = parse_time("2024-01-02")
    fake = FakeBybitPublic(first_day="2024-01-02", trades_per_day=args.trades)
    body = fake.file_bytes("BTCUSDT", day)
    print(f"one day of {args.trades:,} trades: {len(body) / 2**20:.1f} MiB gzip")
    for name, read in (("read_day", lambda: read_day(body, "k", "BTCUSDT", day, day + DAY).height),
                       ("reference", lambda: reference(body))):
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            rows = read()
            times.append(time.perf_counter() - began)
        assert rows == args.trades, (name, rows)
        fastest = min(times)
        print(f"{name:>10}: {rows / fastest / 1e6:.2f}M rows/s, {len(body) / 2**20 / fastest:.1f} MiB/s gzip "
              f"(best of {args.repeat}: {fastest:.3f} s)")


if __name__ == "__main__":
    main()
