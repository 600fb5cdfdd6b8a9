"""One enriched market table end to end, from real sources: ``examples/enriched.toml`` fetches Binance USD-M
funding, open interest (5m) and positioning (5m) from the local fake of Binance's REST API into one DuckDB file,
then hourly bars that ``enrich`` joins them onto and ``features`` computes on, into the same file, all by
``etl run``. The stored bars must equal an as-of join written here in plain polars (no ``join_asof``) of the
stored input tables, and the features a plain-Python computation on those bars. Liquidations come from a short
``etl stream`` of Binance's forceOrder stream (the local fake websocket) into the same file: the bars' liquidation
columns must equal the stored liquidations summed per bar.
"""

from __future__ import annotations

import statistics
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.testing.checks import check_same_values
from etl.timeframes import DAY, HOUR, MINUTE, floor_ts, iso, now_ms
from tests.live.harness import accelerate_clock, start_stream, stop, stream_for

EXAMPLE = Path(__file__).parents[2] / "examples" / "enriched.toml"
BARS = "btc_1h"
KLINE_COLUMNS = ("source", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "quote_volume",
                 "trades", "taker_buy_volume", "taker_buy_quote_volume")
WARMUP = 30  # bars before the first that the features below can reach back to
TOLERANCE = 15 * MINUTE  # the example's enrich tolerance
AS_OF = {  # input table -> (its value columns, as the enriched bars name them)
    "funding": {"funding_rate": "funding_rate", "mark_price": "mark_price"},
    "open_interest": {"open_interest": "open_interest", "open_interest_value": "open_interest_value",
                      "circulating_supply": "circulating_supply"},
    "positioning": {"long_short_ratio": "long_short_ratio", "long_account": "long_account",
                    "short_account": "short_account", "top_long_short_account_ratio": "top_long_short_account_ratio",
                    "top_long_short_position_ratio": "top_long_short_position_ratio",
                    "taker_buy_volume": "positioning_taker_buy_volume",  # the bars have their own taker_buy_volume
                    "taker_sell_volume": "taker_sell_volume", "taker_buy_sell_ratio": "taker_buy_sell_ratio"},
}


@pytest.fixture
def binance():
    from fixtures.fake_binance import FakeBinance

    with FakeBinance() as fake:
        yield fake


def example(folder: Path, binance: Any, start: int, order: list[str] | None = None) -> Path:
    """The example pipeline file pointed at the fake, from ``start``; its pipelines in ``order`` if given."""
    pipelines = tomllib.loads(EXAMPLE.read_text())["pipelines"]
    for table in pipelines.values():
        table["source"].update(start=iso(start), base_url=binance.url, retry_base_delay=0.01, timeout=2.0)
    if order:
        pipelines = {name: pipelines[name] for name in order}
    return write_pipeline(folder, {"pipelines": pipelines})


def table(folder: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(folder / "data" / "enriched.duckdb"), read_only=True) as connection:
        return connection.sql(f"SELECT * EXCLUDE (ts), epoch_ms(ts) AS ts FROM {name} ORDER BY ts").pl()


def as_of(bars: pl.DataFrame, rows: pl.DataFrame, names: dict[str, str], tolerance: int | None) -> pl.DataFrame:
    """For each bar start, the values of the last row at or before it (null when older than ``tolerance``):
    every (bar, row) pair, those not after the bar, the latest per bar."""
    pairs = bars.select("ts").join(rows.select(pl.col("ts").alias("at"), *names), how="cross")
    latest = pairs.filter(pl.col("at") <= pl.col("ts")).sort("at").group_by("ts").last()
    if tolerance is not None:
        fresh = pl.col("ts") - pl.col("at") <= tolerance
        latest = latest.with_columns(pl.when(fresh).then(pl.col(name)).alias(name) for name in names)
    return bars.select("ts").join(latest.drop("at").rename(names), on="ts", how="left")


def reference(folder: Path, bars: pl.DataFrame) -> pl.DataFrame:
    """The enriched columns the bars must hold, from the input tables as stored."""
    expected = bars.select("ts")
    for name, names in AS_OF.items():
        rows = table(folder, name)
        if name == "positioning":
            rows = rows.filter(pl.col("timeframe") == "5m")
        expected = expected.join(as_of(bars, rows, names, None if name == "funding" else TOLERANCE), on="ts")
    return expected


def window(values: list[Any], t: int, n: int) -> list[Any] | None:
    """The n values ending at row t, or None when there are fewer or one is null."""
    chosen = values[t - n + 1:t + 1] if t + 1 >= n else []
    return chosen if len(chosen) == n and None not in chosen else None


def percentile(values: list[Any], t: int, n: int) -> float | None:
    chosen = window(values, t, n)
    return None if chosen is None else 100.0 * sum(value <= values[t] for value in chosen) / n


def change(values: list[Any], t: int, n: int) -> float | None:
    return None if t < n or None in (values[t], values[t - n]) else values[t] - values[t - n]


def change_pct(values: list[Any], t: int, n: int) -> float | None:
    difference = change(values, t, n)
    return None if difference is None or values[t - n] == 0 else difference / values[t - n]


def zscore(values: list[Any], t: int, n: int) -> float | None:
    chosen = window(values, t, n)
    if chosen is None:
        return None
    mean, deviation = statistics.fmean(chosen), statistics.stdev(chosen)
    return (values[t] - mean) / deviation if deviation > 1e-12 * abs(mean) else None


def structure(highs: list[float], lows: list[float], t: int, n: int) -> int | None:
    if t + 1 < 2 * n:
        return None
    high, low = max(highs[t - n + 1:t + 1]), min(lows[t - n + 1:t + 1])
    before_high, before_low = max(highs[t - 2 * n + 1:t - n + 1]), min(lows[t - 2 * n + 1:t - n + 1])
    if high > before_high and low > before_low:
        return 1
    return -1 if high < before_high and low < before_low else 0


def features(bars: pl.DataFrame, binance: Any) -> pl.DataFrame:
    """The example's features of enriched bars, one bar at a time. The run read the bars before the first as
    warm-up (not stored, and with no input stored that early: null enriched columns): they come first here."""
    first = int(bars["ts"][0])
    warmup = [(high, low) for _, _, high, low, *_ in binance.expected_klines("BTCUSDT", "1h", first - WARMUP * HOUR,
                                                                            first)]
    nulls = [None] * WARMUP
    column = {name: nulls + bars[name].to_list() for name in ("funding_rate", "open_interest", "long_short_ratio")}
    column["high"] = [high for high, _ in warmup] + bars["high"].to_list()
    column["low"] = [low for _, low in warmup] + bars["low"].to_list()
    per_bar: dict[str, Callable[[int], Any]] = {
        "funding_rate_percentile_24": lambda t: percentile(column["funding_rate"], t, 24),
        "open_interest_change_1": lambda t: change(column["open_interest"], t, 1),
        "open_interest_change_pct_1": lambda t: change_pct(column["open_interest"], t, 1),
        "long_short_ratio_change_1": lambda t: change(column["long_short_ratio"], t, 1),
        "long_short_ratio_zscore_24": lambda t: zscore(column["long_short_ratio"], t, 24),
        "market_structure_12": lambda t: structure(column["high"], column["low"], t, 12),
    }
    rows = range(WARMUP, WARMUP + bars.height)
    return pl.DataFrame({"ts": bars["ts"], **{name: pl.Series(name, [compute(t) for t in rows], pl.Float64)
                                              for name, compute in per_bar.items()}})


def assert_enriched(folder: Path, binance: Any, start: int) -> pl.DataFrame:
    """Every closed hour from ``start`` is stored, enriched as the reference join says, with its features."""
    bars = table(folder, BARS)
    hours = list(range(start, floor_ts(binance.now_ms(), "1h"), HOUR))
    assert bars["ts"].to_list() == hours
    wanted = reference(folder, bars)
    check_same_values(bars.select(wanted.columns), wanted, f"{BARS} enriched", 0.0)
    computed = features(bars, binance)
    check_same_values(bars.select(computed.columns), computed, f"{BARS} features", 1e-9)
    added = {column for names in AS_OF.values() for column in names.values()} | set(computed.columns) | {"rsi_14"}
    assert set(bars.columns) == set(KLINE_COLUMNS) | added
    return bars


def test_the_example_stores_bars_enriched_from_what_its_input_pipelines_stored(tmp_path: Path, binance) -> None:
    start = floor_ts(now_ms(), "1h") - 3 * DAY
    path = example(tmp_path, binance, start)

    result = run_cli("run", str(path))

    assert result.exit_code == 0, str(result)
    assert "held" not in result.summary, result.summary
    bars = assert_enriched(tmp_path, binance, start)
    settled = table(tmp_path, "funding")["ts"].min()  # the first settlement stored: no rate is in force before it
    assert bars.filter(pl.col("funding_rate").is_null())["ts"].to_list() == [ts for ts in bars["ts"] if ts < settled]
    assert bars["open_interest"].null_count() == 0 and bars["long_short_ratio"].null_count() == 0
    assert bars["market_structure_12"].drop_nulls().n_unique() >= 2
    assert bars["long_short_ratio_zscore_24"].drop_nulls().len() >= 40


def test_bars_that_run_before_their_inputs_are_held_and_the_next_run_stores_them(tmp_path: Path, binance) -> None:
    """``etl run`` runs pipelines in the file's order: listed first, the bars find no input stored and are held
    (not stored with nulls, checkpoint kept); the next run, with the inputs stored, completes them."""
    start = floor_ts(now_ms(), "1h") - 2 * DAY
    path = example(tmp_path, binance, start, order=[BARS, "btc_funding", "btc_open_interest", "btc_positioning"])

    first = run_cli("run", str(path))

    assert first.exit_code == 0, str(first)
    assert "held rows: 48" in first.summary, first.summary
    second = run_cli("run", str(path))
    assert second.exit_code == 0 and "held" not in second.summary, str(second)
    assert_enriched(tmp_path, binance, start)


def test_the_example_validates_as_shipped() -> None:
    result = run_cli("validate", str(EXAMPLE))

    assert result.exit_code == 0, str(result)
    assert result.stdout == "enriched.toml: 4 pipelines, 4 streams: OK\n"


def test_liquidations_streamed_into_the_file_are_summed_onto_the_bars(tmp_path: Path, binance, monkeypatch) -> None:
    """Minute bars close every second (``ETL_CLOCK``): ``etl stream`` of forced orders runs four seconds, stops for
    two (minutes nobody listened to, which its restart records as a gap in the ledger), and runs again; while it
    runs, ``etl run`` of the bars into the same DuckDB file (the stream hands it over) stores each bar whose
    liquidations have arrived (one stored at or after its end), and holds the later ones. Bars nobody listened
    to whole (before the first liquidation stored, or overlapping the gap) have null liquidations, not a sum of
    what was heard."""
    from etl.ledger import Ledger
    from fixtures.fake_binance_ws import FakeBinanceWebsocket

    accelerate_clock(monkeypatch)
    usdm = {"plugin": "binance", "market": "usdm", "symbols": ["BTCUSDT"], "base_url": binance.url,
            "retry_base_delay": 0.01}
    sinks = [{"plugin": "duckdb", "path": "data/enriched.duckdb"}]
    with FakeBinanceWebsocket(binance) as ws:
        live = write_pipeline(tmp_path, single_pipeline(
            {**usdm, "dataset": "liquidations", "start": iso(now_ms()), "ws_url": f"{ws.url}/market"}, sinks,
            name="btc_liquidations"), "live.toml")
        first_run = stream_for(live, 4)
        first = int(table(tmp_path, "liquidations")["ts"].min())
        start = floor_ts(first, "1m") - MINUTE
        bars_path = write_pipeline(tmp_path, single_pipeline(
            {**usdm, "start": iso(start), "timeframes": ["1m"]}, sinks,
            [{"plugin": "enrich", "from_sink": "duckdb", "datasets": ["liquidations"], "gaps_from": ".etl"},
             {"plugin": "features", "include": ["liquidation_intensity"]}], name="btc_1m"), "bars.toml")
        time.sleep(2)
        streaming = start_stream(live)
        time.sleep(4)
        result = run_cli("run", str(bars_path))  # reads and writes the file the stream writes: it hands it over
        time.sleep(1)
        second_run = stop(streaming)
    assert (first_run[0], second_run[0]) == (0, 0), first_run[3] + second_run[3]
    assert '"event": "sinks handed over"' in second_run[3]
    assert result.exit_code == 0, str(result)
    liquidations = table(tmp_path, "liquidations")
    bars = table(tmp_path, "ohlcv")
    last = int(bars["ts"].max())
    assert bars["ts"].to_list() == list(range(start, last + 1, MINUTE))
    assert last + MINUTE <= int(liquidations["ts"].max()), "the bars whose liquidations had not arrived were held"
    ledger = Ledger(tmp_path / ".etl")
    gaps = ledger.gaps_of("liquidations/BTCUSDT", "binance")
    ledger.close()
    stopped = [(gap_start, end) for gap_start, end in gaps if gap_start > first]
    assert len(stopped) == 1 and stopped[0][1] - stopped[0][0] >= 2 * MINUTE, gaps
    heard = ~((pl.col("ts") < first) | pl.any_horizontal(
        (pl.col("ts") < end) & (pl.col("ts") + MINUTE > gap_start) for gap_start, end in gaps))
    unheard = bars.filter(~heard)
    assert unheard.height >= 4 and unheard["liquidation_buy_size"].null_count() == unheard.height
    assert unheard["liquidation_intensity"].null_count() == unheard.height
    bars = bars.filter(heard)
    assert bars.height >= 4
    sums = per_bar(bars, liquidations)
    assert sums["liquidation_buy_size"].sum() > 0 and sums["liquidation_sell_size"].sum() > 0
    check_same_values(bars.select(sums.columns), sums, "btc_1m liquidations", 1e-12)
    published = pl.DataFrame(ws.published, orient="row", schema=["symbol", "ts", "side", "price", "size"])
    check_same_values(per_bar(bars, published), sums, "btc_1m liquidations published", 1e-12)
    intensity = (sums["liquidation_buy_size"] + sums["liquidation_sell_size"]) / bars["volume"]
    check_same_values(bars.select("ts", "liquidation_intensity"),
                      pl.DataFrame({"ts": bars["ts"], "liquidation_intensity": intensity}), "intensity", 1e-12)


def per_bar(bars: pl.DataFrame, liquidations: pl.DataFrame) -> pl.DataFrame:
    """Size and price * size liquidated per side in each minute bar, 0 where none was."""
    minute = liquidations.with_columns((pl.col("ts") // MINUTE * MINUTE).alias("bar"),
                                       (pl.col("price") * pl.col("size")).alias("notional"))
    sums = bars.select("ts")
    for side in ("buy", "sell"):
        one = minute.filter(pl.col("side") == side).group_by("bar").agg(
            pl.col("size").sum().alias(f"liquidation_{side}_size"),
            pl.col("notional").sum().alias(f"liquidation_{side}_notional"))
        sums = sums.join(one.rename({"bar": "ts"}), on="ts", how="left")
    return sums.fill_null(0.0)


def test_runs_hours_apart_store_what_one_run_stores(tmp_path: Path, binance, monkeypatch) -> None:
    """The clock stands still at two moments five hours apart (``ETL_CLOCK`` at speed 0): the second run adds the
    new hours, whose features reach back into bars the first run stored, enriched again as warm-up."""
    first = floor_ts(now_ms(), "1h") - 10 * HOUR + 20 * MINUTE
    start = floor_ts(first, "1h") - 3 * DAY
    path = example(tmp_path, binance, start)
    for moment in (first, first + 5 * HOUR):
        monkeypatch.setenv("ETL_CLOCK", f"0@{moment}")
        result = run_cli("run", str(path))
        assert result.exit_code == 0 and "held" not in result.summary, str(result)
    assert_enriched(tmp_path, binance, start)
