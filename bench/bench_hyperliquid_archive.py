"""Parsing throughput of Hyperliquid archive l2Book files, beside a plain decompress + json.loads loop.

    python bench/bench_hyperliquid_archive.py                     # 4 hourly files x 3,600 snapshots
    python bench/bench_hyperliquid_archive.py --files 24 --snapshots 7200 --repeat 5

The files are built from the recorded archive line (20 + 20 levels, same key order), one snapshot per
second by default, LZ4-frame compressed and read from disk, as the source reads its cache. Both readers
produce the same rows (exchange time and best bid/ask price and size) and the script checks they agree:

  reference   lz4.frame.decompress of the whole file, then json.loads and a dict walk per line
  orjson      the same loop with orjson.loads (for scale, not the target)
  source      etl_hyperliquid.parsing.l2_top: streamed decompression, column-wise extraction in polars

Figures are snapshots per second and MB/s of decompressed input (10^6 bytes), best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl_hyperliquid import parsing  # noqa: E402

from fixtures.fake_hyperliquid_archive import compress, l2book_lines  # noqa: E402

START = 1_685_577_600_000  # 2023-06-01
HOUR = 3_600_000


def write_files(folder: Path, files: int, snapshots: int) -> tuple[list[Path], int]:
    """LZ4 hour files of BTC; returns them and their total decompressed size."""
    paths, raw = [], 0
    for index in range(files):
        lines = l2book_lines("BTC", START + index * HOUR, snapshots)
        raw += sum(len(line) + 1 for line in lines)
        path = folder / f"{index}.lz4"
        path.write_bytes(compress(lines))
        paths.append(path)
    return paths, raw


def top_of_book(loads: Callable[[bytes], Any]) -> Callable[[Path], list[tuple[Any, ...]]]:
    def read(path: Path) -> list[tuple[Any, ...]]:
        import lz4.frame

        rows = []
        for line in lz4.frame.decompress(path.read_bytes()).splitlines():
            data = loads(line)["raw"]["data"]
            bids, asks = data["levels"]
            rows.append((data["time"], float(bids[0]["px"]), float(bids[0]["sz"]), float(asks[0]["px"]),
                         float(asks[0]["sz"])))
        return rows

    return read


def source(path: Path) -> list[tuple[Any, ...]]:
    return list(parsing.l2_top(path).select("ts", "bid_px", "bid_sz", "ask_px", "ask_sz").iter_rows())


def best_of(repeat: int, read: Callable[[Path], list[tuple[Any, ...]]], paths: list[Path]) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        began = time.perf_counter()
        rows = sum(len(read(path)) for path in paths)
        best = min(best, time.perf_counter() - began)
    return best, rows


def main() -> None:
    import orjson

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4, help="hourly files (default 4)")
    parser.add_argument("--snapshots", type=int, default=3600, help="snapshots per file (default 3600)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per reader; the best counts (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        paths, raw = write_files(Path(folder), args.files, args.snapshots)
        compressed = sum(path.stat().st_size for path in paths)
        print(f"{args.files} files, {raw / 1e6:.1f} MB decompressed ({compressed / 1e6:.1f} MB LZ4)")
        readers = {"reference": top_of_book(json.loads), "orjson": top_of_book(orjson.loads), "source": source}
        assert source(paths[0]) == readers["reference"](paths[0]), "the readers disagree"
        results = {name: best_of(args.repeat, read, paths) for name, read in readers.items()}
    reference = results["reference"][0]
    print(f"{'reader':<10} {'seconds':>8} {'snapshots/s':>12} {'MB/s':>8} {'vs reference':>13}")
    for name, (seconds, rows) in results.items():
        print(f"{name:<10} {seconds:8.3f} {rows / seconds:12,.0f} {raw / 1e6 / seconds:8.1f} "
              f"{reference / seconds:12.1f}x")


if __name__ == "__main__":
    main()
