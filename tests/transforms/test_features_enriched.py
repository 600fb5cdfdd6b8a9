"""``features`` on bars the ``enrich`` transform filled: liquidation intensity, long/short ratio change and z-score,
funding percentile and open-interest change counted in bars, and ``market_structure_N`` on any bars. Each is
checked against a plain-Python reference written from the catalog's definition, and incremental runs against
one run.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from enrich_helpers import MAKERS, MINUTE, START, inputs, store, until
from transform_helpers import DATABASE, candles, pipeline, run, stored, write_input

from etl.base import BatchContext, PluginContext, Stream
from etl.plugins import registry
from etl.testing.checks import check_same_values

BARS = 900
ENRICHED = ["liquidation_intensity", "long_short_ratio_change_3", "long_short_ratio_zscore_10",
            "funding_rate_percentile_24", "open_interest_change_5", "open_interest_change_pct_5", "market_structure_4"]


def chain(include: list[str]) -> list[dict[str, Any]]:
    return [{"plugin": "enrich", "from_sink": "duckdb", "datasets": list(MAKERS), "source": "binance",
             "positioning_timeframe": "5m", "tolerance": "30m", "every": {"funding": "8h"}},
            {"plugin": "features", "include": include}]


def market_structure(highs: list[float | None], lows: list[float | None], n: int) -> list[int | None]:
    """The catalog's definition, bar by bar: the last n bars against the n before them."""
    out: list[int | None] = []
    for t in range(len(highs)):
        if t < 2 * n - 1:
            out.append(None)
            continue
        now_h, now_l = highs[t - n + 1:t + 1], lows[t - n + 1:t + 1]
        was_h, was_l = highs[t - 2 * n + 1:t - n + 1], lows[t - 2 * n + 1:t - n + 1]
        if None in now_h or None in now_l or None in was_h or None in was_l:
            out.append(None)
        elif max(now_h) > max(was_h) and min(now_l) > min(was_l):
            out.append(1)
        elif max(now_h) < max(was_h) and min(now_l) < min(was_l):
            out.append(-1)
        else:
            out.append(0)
    return out


def change(values: list[float | None], n: int, relative: bool = False) -> list[float | None]:
    out: list[float | None] = []
    for t, value in enumerate(values):
        before = values[t - n] if t >= n else None
        if value is None or before is None or (relative and before == 0):
            out.append(None)
        else:
            out.append((value - before) / before if relative else value - before)
    return out


def zscore(values: list[float | None], n: int) -> list[float | None]:
    out: list[float | None] = []
    for t, value in enumerate(values):
        window = values[t - n + 1:t + 1] if t >= n - 1 else [None]
        if None in window:
            out.append(None)
            continue
        mean, deviation = statistics.fmean(window), statistics.stdev(window)
        out.append((value - mean) / deviation if deviation > 1e-12 * abs(mean) else None)
    return out


def percentile(values: list[float | None], n: int) -> list[float | None]:
    out: list[float | None] = []
    for t, value in enumerate(values):
        window = values[t - n + 1:t + 1] if t >= n - 1 else [None]
        out.append(None if None in window else 100 * sum(v <= value for v in window) / n)
    return out


def intensity(buy: list[float], sell: list[float], volume: list[float]) -> list[float | None]:
    return [(b + s) / v if v and b is not None else None for b, s, v in zip(buy, sell, volume, strict=True)]


def assert_close(actual: list[Any], wanted: list[Any], name: str) -> None:
    assert len(actual) == len(wanted), name
    for index, (a, w) in enumerate(zip(actual, wanted, strict=True)):
        assert (a is None) == (w is None), f"{name} row {index}: {a} != {w}"
        if a is not None:
            assert math.isclose(a, w, rel_tol=1e-9, abs_tol=1e-12), f"{name} row {index}: {a} != {w}"


def enriched_run(folder: Path, bars: pl.DataFrame, include: list[str], cuts: tuple[int, ...] = (BARS,)) -> pl.DataFrame:
    store(folder, {"plugin": "duckdb", "path": DATABASE}, inputs(START, START + (BARS + 30) * MINUTE))
    path = pipeline(folder, chain(include))
    for cut in cuts:
        write_input(folder, bars.head(cut))
        result = run(path)
        assert result.exit_code == 0, str(result)
    return stored(folder)


def test_enriched_features_follow_their_definitions(tmp_path: Path) -> None:
    bars = candles(BARS, seed=4).with_columns(pl.when(pl.int_range(pl.len()) % 97 == 5).then(0.0)
                                              .otherwise(pl.col("volume")).alias("volume"))
    table = enriched_run(tmp_path, bars, ENRICHED)
    rows = {name: table[name].to_list() for name in table.columns}
    assert_close(rows["liquidation_intensity"], intensity(rows["liquidation_buy_size"], rows["liquidation_sell_size"],
                                                          rows["volume"]), "liquidation_intensity")
    assert_close(rows["long_short_ratio_change_3"], change(rows["long_short_ratio"], 3), "long_short_ratio_change_3")
    assert_close(rows["long_short_ratio_zscore_10"], zscore(rows["long_short_ratio"], 10), "long_short_ratio_zscore_10")
    assert_close(rows["funding_rate_percentile_24"], percentile(rows["funding_rate"], 24), "funding_rate_percentile_24")
    assert_close(rows["open_interest_change_5"], change(rows["open_interest"], 5), "open_interest_change_5")
    assert_close(rows["open_interest_change_pct_5"], change(rows["open_interest"], 5, relative=True),
                 "open_interest_change_pct_5")
    assert rows["market_structure_4"] == market_structure(rows["high"], rows["low"], 4)
    unheard = table["liquidation_buy_size"].is_null()  # the bars before the first liquidation stored
    assert unheard.sum() > 0
    assert table["liquidation_intensity"].null_count() == ((table["volume"] == 0) | unheard).sum() > unheard.sum()
    assert table["long_short_ratio_zscore_10"].drop_nulls().abs().max() < 4  # the flat stretch gave null, not 1e15
    assert table["open_interest_change_5"].null_count() > 90  # the outage and the NaN: null, never NaN
    for name in ENRICHED:
        if table[name].dtype.is_float():
            assert not table[name].is_nan().any(), name


def test_enriched_features_are_the_same_from_many_runs(tmp_path: Path) -> None:
    bars = candles(BARS, seed=6)
    whole = enriched_run(tmp_path / "whole", bars, ENRICHED)
    runs = enriched_run(tmp_path / "runs", bars, ENRICHED, cuts=(200, 201, 450, 700, BARS))
    check_same_values(runs, whole, "ohlcv/BTC/1m", 1e-9)


@pytest.mark.parametrize("n", [1, 3, 20])
def test_market_structure_matches_its_definition_with_ties_and_gaps(tmp_path: Path, n: int) -> None:
    """Highs and lows rounded to whole dollars, so windows tie often (a tie is range); a NaN high is null."""
    bars = candles(600, seed=n, volatility=0.0005).with_columns(pl.col("high", "low").round(0))
    bars = bars.with_columns(pl.when(pl.int_range(pl.len()) == 300).then(float("nan")).otherwise(pl.col("high"))
                             .alias("high"))
    write_input(tmp_path, bars)
    result = run(pipeline(tmp_path, [{"plugin": "features", "include": [f"market_structure_{n}"]}]))
    assert result.exit_code == 0, str(result)
    table = stored(tmp_path)
    highs = [None if math.isnan(value) else value for value in table["high"].to_list()]
    wanted = market_structure(highs, table["low"].to_list(), n)
    assert table[f"market_structure_{n}"].dtype == pl.Int8
    assert table[f"market_structure_{n}"].to_list() == wanted
    assert {1, -1, 0} <= set(wanted)


def test_positioning_features_on_positioning_rows(tmp_path: Path) -> None:
    """No source delivers positioning yet (they are being built): the transform itself, on a positioning batch."""
    ratio = np.round(np.random.default_rng(2).uniform(0.8, 2.5, 60), 4)
    frame = pl.DataFrame({"source": "binance", "symbol": "BTC", "timeframe": "5m",
                          "ts": pl.Series(START + np.arange(60) * 5 * MINUTE).cast(pl.Datetime("ms", "UTC")),
                          "long_short_ratio": ratio, "long_account": ratio / (1 + ratio),
                          "short_account": 1 / (1 + ratio)})
    transform = registry().get("transform", "features")({}, PluginContext("test", tmp_path, tmp_path / ".etl"))
    table = transform.apply(frame, BatchContext(Stream("positioning", "BTC", "5m"), START, None))
    assert_close(table["long_short_ratio_change_1"].to_list(), change(list(ratio), 1), "change")
    assert_close(table["long_short_ratio_zscore_20"].to_list(), zscore(list(ratio), 20), "zscore")


def test_a_feature_of_enriched_bars_on_plain_bars_names_the_enrich_transform(tmp_path: Path) -> None:
    write_input(tmp_path, candles(50))
    result = run(pipeline(tmp_path, [{"plugin": "features", "include": ["liquidation_intensity"]}]))
    assert result.exit_code == 1
    assert ("liquidation_intensity needs a numeric column 'liquidation_buy_size'" in result.output
            and "the enrich transform brings it from liquidations, before features" in result.output), str(result)


def test_features_of_held_bars_equal_one_run_once_their_inputs_arrive(tmp_path: Path) -> None:
    """enrich holds the bars whose inputs lag; features after it get their warm-up from before the hold on the
    next run, so the table ends as one run over complete inputs stores it."""
    bars = candles(BARS, seed=8)
    frames = inputs(START, START + (BARS + 30) * MINUTE)
    whole = tmp_path / "whole"
    store(whole, {"plugin": "duckdb", "path": DATABASE}, frames)
    write_input(whole, bars)
    assert run(pipeline(whole, chain(ENRICHED))).exit_code == 0

    late = tmp_path / "late"
    store(late, {"plugin": "duckdb", "path": DATABASE}, until(frames, START + 500 * MINUTE))
    write_input(late, bars)
    path = pipeline(late, chain(ENRICHED), batch_rows=100)
    first = run(path)
    assert first.exit_code == 0 and "held rows" in first.summary, str(first)
    assert stored(late).height < 500
    store(late, {"plugin": "duckdb", "path": DATABASE}, frames)
    assert run(path).exit_code == 0
    check_same_values(stored(late), stored(whole), "ohlcv/BTC/1m", 1e-9)
