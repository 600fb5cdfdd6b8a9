"""How far features stored by incremental runs drift from one run over the whole history, on 1m series with
missing bars: the figure behind "warm-up counted in rows" (README, Warm-up).

    python bench/measure_warmup_exactness.py

For each pattern of missing minutes (scattered, long holes, holes at the runs' cuts) it loads 6,000 candles once,
then again in eleven runs that each find 500 more bars (the ``files`` source reading a growing CSV), and prints
the largest relative difference of any feature and the count of values null in one load and not the other. The
series and cuts are those of ``tests/transforms/test_warmup_by_rows.py``, which asserts at most 1e-12 and no
differing null; run this on an older commit to see what a warm-up counted in time gave (0.51 and 1,305).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "transforms")]

import test_warmup_by_rows as case  # noqa: E402
from transform_helpers import pipeline, run, stored, write_input  # noqa: E402

from etl.timeframes import MINUTE  # noqa: E402


def drift(incremental: pl.DataFrame, whole: pl.DataFrame) -> tuple[float, int]:
    """Largest relative difference over every numeric column, and values null in one frame only."""
    worst, nulls = 0.0, 0
    for name, dtype in whole.schema.items():
        if not dtype.is_numeric():
            continue
        mine, theirs = incremental[name], whole[name]
        nulls += int((mine.is_null() != theirs.is_null()).sum())
        both = mine.is_not_null() & theirs.is_not_null()
        a, b = mine.filter(both).cast(pl.Float64).to_numpy(), theirs.filter(both).cast(pl.Float64).to_numpy()
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300), initial=0.0)))
    return worst, nulls


def grown(folder: Path, data: pl.DataFrame) -> pl.DataFrame:
    cuts = [case.START + bar * MINUTE for bar in range(1_000, case.BARS, 500)]
    csv = write_input(folder, data.filter(pl.col("ts") < cuts[0]))
    path = pipeline(folder, case.FEATURES)
    run(path)
    for low, high in zip(cuts, [*cuts[1:], None], strict=True):
        rows = data.filter(pl.col("ts") >= low)
        case.append(csv, rows if high is None else rows.filter(pl.col("ts") < high))
        run(path)
    return stored(folder)


def main() -> None:
    print(f"{'pattern':<22} {'max relative difference':>24} {'differing nulls':>16}")
    for pattern in sorted(case.PATTERNS):
        folder = Path(tempfile.mkdtemp())
        data = case.series(pattern)
        worst, nulls = drift(grown(folder / "steps", data), case.one_shot(folder / "whole", data))
        print(f"{pattern:<22} {worst:>24.3g} {nulls:>16,}")


if __name__ == "__main__":
    main()
