"""``features`` on derivatives data: funding-rate percentile on funding, open-interest change on open interest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from transform_helpers import pipeline, run, stored, write_input

from etl.timeframes import parse_time

START = parse_time("2024-01-01")
HOUR = 3_600_000


def test_funding_rate_percentile(tmp_path: Path) -> None:
    """Funding often sits at its floor (0.0001), so ties are the normal case: they count as at-or-below."""
    rng = np.random.default_rng(8)
    rates = np.where(rng.random(400) < 0.4, 0.0001, np.round(rng.normal(0.0001, 0.0003, 400), 6))
    write_input(tmp_path, pl.DataFrame({"ts": START + np.arange(400) * 8 * HOUR, "funding_rate": rates}))
    transforms = [{"plugin": "features", "include": ["funding_rate_percentile_90", "funding_rate_percentile_7"]}]
    result = run(pipeline(tmp_path, transforms, dataset="funding", timeframe=None))
    assert result.exit_code == 0, str(result)
    table = stored(tmp_path, "funding")
    for n in (90, 7):
        actual = table[f"funding_rate_percentile_{n}"]
        assert actual.null_count() == n - 1
        expected = [100 * np.sum(rates[i - n + 1:i + 1] <= rates[i]) / n for i in range(n - 1, 400)]
        np.testing.assert_allclose(actual.drop_nulls().to_numpy(), expected, rtol=1e-12)
        assert actual.min() > 0 and actual.max() <= 100


def test_open_interest_change_by_default(tmp_path: Path) -> None:
    interest = np.array([1000.0, 1100.0, 1045.0, 0.0, 500.0, 500.0])
    write_input(tmp_path, pl.DataFrame({"ts": START + np.arange(6) * HOUR, "open_interest": interest}))
    result = run(pipeline(tmp_path, [{"plugin": "features"}], dataset="open_interest", timeframe=None))
    assert result.exit_code == 0, str(result)
    table = stored(tmp_path, "open_interest")
    assert table["open_interest_change_1"].to_list() == [None, 100.0, -55.0, -1045.0, 500.0, 0.0]
    assert table["open_interest_change_pct_1"].to_list() == [None, 0.1, -0.05, -1.0, None, 0.0]


def test_funding_percentile_is_exact_across_runs(tmp_path: Path) -> None:
    rates = np.round(np.random.default_rng(9).normal(0.0001, 0.0003, 120), 6)
    frame = pl.DataFrame({"ts": START + np.arange(120) * 8 * HOUR, "funding_rate": rates})
    transforms = [{"plugin": "features", "include": ["funding_rate_percentile_30"]}]
    tables = []
    for name, cuts in (("whole", [120]), ("runs", [60, 90, 120])):
        folder = tmp_path / name
        path = pipeline(folder, transforms, dataset="funding", timeframe=None)
        for cut in cuts:
            write_input(folder, frame.head(cut))
            assert run(path).exit_code == 0
        tables.append(stored(folder, "funding"))
    assert tables[1].equals(tables[0])
