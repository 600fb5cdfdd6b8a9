"""The ``enrich`` transform: bars stored with funding, open interest, positioning and liquidations equal a
one-shot as-of join in plain polars, whether loaded in one run or many, and a bar whose inputs lag is never
stored with them missing: it is held back and stored by the run after they arrive.

Inputs are written into the pipeline's own DuckDB sink (the same file the bars go to) through the sink plugin.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from enrich_helpers import MAKERS, MINUTE, START, inputs, one_shot, store, until
from transform_helpers import DATABASE, candles, counters, pipeline, run, stored, write_input

from etl.errors import PermanentError
from etl.testing import run_cli
from etl.testing.checks import check_same_values

BARS = 1500
END = START + BARS * MINUTE
SINK = {"plugin": "duckdb", "path": DATABASE}
BAR_COLUMNS = ["source", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]


def enrich(**settings: Any) -> dict[str, Any]:
    """The transform's table; a setting given as None is left out (its default applies)."""
    table = {"plugin": "enrich", "from_sink": "duckdb", "datasets": list(MAKERS), "source": "binance",
             "positioning_timeframe": "5m", "tolerance": "30m", "every": {"funding": "8h"}, **settings}
    return {key: value for key, value in table.items() if value is not None}


def expected(bars: pl.DataFrame, frames: dict[str, pl.DataFrame], timeframe: str = "1m",
             tolerance: str = "30m", gaps: tuple[tuple[int, int], ...] = ()) -> pl.DataFrame:
    table = bars.with_columns(pl.from_epoch("ts", "ms").dt.replace_time_zone("UTC").dt.cast_time_unit("ms"),
                              pl.lit("files").alias("source"), pl.lit("BTC").alias("symbol"),
                              pl.lit(timeframe).alias("timeframe"))
    table = table.select("source", "symbol", "timeframe", pl.all().exclude("source", "symbol", "timeframe"))
    return one_shot(table, frames, tolerance=tolerance, gaps=gaps)


def assert_equal(actual: pl.DataFrame, wanted: pl.DataFrame) -> None:
    assert sorted(actual.columns) == sorted(wanted.columns)
    check_same_values(actual.select(wanted.columns), wanted, "ohlcv/BTC", 1e-12)  # sums of floats, in any order


def test_enriched_bars_equal_a_one_shot_as_of_join(tmp_path: Path) -> None:
    """Small batches, so the inputs read for the first batch serve the later ones; bars and inputs in one file."""
    bars = candles(BARS, taker=True)
    frames = inputs(START, END + 30 * MINUTE)
    write_input(tmp_path, bars)
    store(tmp_path, SINK, frames)
    result = run(pipeline(tmp_path, [enrich()], batch_rows=250))
    assert result.exit_code == 0, str(result)
    table = stored(tmp_path)
    assert_equal(table, expected(bars, frames))
    assert table["open_interest"].null_count() > 80  # the outage, beyond the tolerance
    assert table["funding_rate"].null_count() == 0
    assert table["liquidation_sell_size"].sum() > 0 and table["liquidation_buy_notional"].sum() > 0
    assert "positioning_taker_buy_volume" in table.columns  # the bars' own taker_buy_volume keeps its name
    for column in table.columns:
        if table[column].dtype.is_float():
            assert not table[column].is_nan().any(), column


def test_runs_that_each_add_bars_store_what_one_run_stores(tmp_path: Path) -> None:
    bars = candles(BARS)
    frames = inputs(START, END + 30 * MINUTE)
    store(tmp_path, SINK, frames)
    csv = write_input(tmp_path, bars.head(300))
    path = pipeline(tmp_path, [enrich()])
    for cut in (300, 301, 700, 1100, BARS):
        write_input(tmp_path, bars.head(cut))
        assert run(path).exit_code == 0
    assert csv.exists()
    assert_equal(stored(tmp_path), expected(bars, frames))


def test_months_of_bars_read_their_inputs_window_by_window(tmp_path: Path) -> None:
    """100 days of hourly bars in batches of 12 days: open interest, positioning and liquidations are read about
    seven weeks at a time, each window from its first bar less the tolerance; a three-day gap in open interest
    leaves its bars null, as in the one-shot join."""
    bars = candles(2400, timeframe="1h", seed=2)
    end = START + 2400 * 60 * MINUTE
    frames = inputs(START, end + 60 * MINUTE)
    gap = (pl.col("ts") >= datetime(2024, 2, 10, tzinfo=UTC)) & (pl.col("ts") < datetime(2024, 2, 13, tzinfo=UTC))
    frames["open_interest"] = frames["open_interest"].filter(~gap)
    store(tmp_path, SINK, frames)
    write_input(tmp_path, bars)
    result = run(pipeline(tmp_path, [enrich(tolerance="2h")], timeframe="1h", batch_rows=300))
    assert result.exit_code == 0 and "held" not in result.summary, str(result)
    table = stored(tmp_path)
    assert table.height == 2400 and table["open_interest"].null_count() >= 70
    assert_equal(table, expected(bars, frames, "1h", "2h"))


def test_bars_wait_for_lagging_inputs_and_a_later_run_stores_them(tmp_path: Path) -> None:
    """Inputs have arrived up to bar 900: bars from there are held (not stored, checkpoint kept), the run says
    how many; once the inputs arrive the next run stores them, and the table is the one-shot join."""
    bars = candles(BARS)
    frames = inputs(START, END + 30 * MINUTE)
    lag = START + 900 * MINUTE
    store(tmp_path, SINK, until(frames, lag))
    write_input(tmp_path, bars)
    path = pipeline(tmp_path, [enrich()], batch_rows=200)

    first = run(path)
    assert first.exit_code == 0, str(first)
    held = stored(tmp_path)
    assert held["ts"].max() < datetime(2024, 1, 1, 15, tzinfo=UTC)  # bar 900 is 15:00
    assert held.height >= 890
    assert "held rows" in first.summary and counters(tmp_path)["held_rows"] > 0
    checkpoint = json.loads((tmp_path / ".etl" / "checkpoints" / "test.json").read_text())
    assert checkpoint["streams"]["ohlcv/BTC/1m"]["next_ms"] == START + held.height * MINUTE

    store(tmp_path, SINK, frames)
    second = run(path)
    assert second.exit_code == 0 and "held rows" not in second.summary, str(second)
    assert_equal(stored(tmp_path), expected(bars, frames))


def test_a_chunked_backfill_does_not_pass_held_bars(tmp_path: Path) -> None:
    """A backfill's finished chunk is checkpointed at its end even without its last bars, except when enrich held
    them: the stream's checkpoint stops at the first held bar."""
    bars = candles(BARS)
    frames = inputs(START, END + 30 * MINUTE)
    store(tmp_path, SINK, until(frames, START + 600 * MINUTE))
    write_input(tmp_path, bars)
    path = pipeline(tmp_path, [enrich(wait=["funding", "open_interest", "positioning"])], chunk=500)
    result = run_cli("backfill", str(path), "--pipeline", "test", "--start", "2024-01-01", "--end", "2024-01-02")
    assert result.exit_code == 0, str(result)
    table = stored(tmp_path)
    assert table["ts"].max() < datetime(2024, 1, 1, 10, tzinfo=UTC)  # bar 600 is 10:00
    (record,) = (tmp_path / ".etl" / "backfills").glob("*.json")
    recorded = json.loads(record.read_text())
    assert recorded["streams"]["ohlcv/BTC/1m"]["next_ms"] <= START + 600 * MINUTE
    assert recorded["status"] == "running"  # unfinished: --resume computes the held bars

    store(tmp_path, SINK, frames)
    resumed = run_cli("backfill", "--resume", str(path))
    assert resumed.exit_code == 0 and "held" not in resumed.summary, str(resumed)
    assert json.loads(record.read_text())["status"] == "done"
    assert_equal(stored(tmp_path), expected(bars, frames).filter(pl.col("ts") < datetime(2024, 1, 2, tzinfo=UTC)))


def test_wait_leaves_out_an_input_that_may_lag(tmp_path: Path) -> None:
    """No liquidation after bar 1000 is stored: with liquidations out of ``wait`` the bars are stored anyway."""
    bars = candles(BARS)
    frames = inputs(START, END + 30 * MINUTE)
    frames["liquidations"] = until(frames, START + 1000 * MINUTE)["liquidations"]
    store(tmp_path, SINK, frames)
    write_input(tmp_path, bars)
    result = run(pipeline(tmp_path, [enrich(wait=["funding", "open_interest", "positioning"])]))
    assert result.exit_code == 0 and "held" not in result.summary, str(result)
    assert_equal(stored(tmp_path), expected(bars, frames))


def record_liquidation_gaps(state_dir: Path, source: str, gaps: list[tuple[int, int]]) -> None:
    """Gaps of the liquidations stream of BTC in the ledger of ``state_dir``, as ``etl stream`` records them."""
    from etl.gaps import Gap
    from etl.ledger import Ledger

    ledger = Ledger(state_dir)
    run_id = ledger.start_run("stream", "btc_liquidations")
    ledger.record_gaps(run_id, "btc_liquidations", source, "liquidations/BTC", [Gap(*gap, 0) for gap in gaps])
    ledger.close()


def test_bars_nobody_listened_to_get_null_liquidations_not_zero(tmp_path: Path) -> None:
    """Before the first liquidation stored, and in the gaps the ledger recorded for the liquidations of the same
    source and symbol, nobody listened: those bars' liquidation columns are null; a bar that overlaps a gap by a
    millisecond too. The other source's gaps do not count. Small batches: the windows serve several of them."""
    bars = candles(BARS)
    frames = inputs(START, END + 30 * MINUTE)
    gaps = [(START + 300 * MINUTE + 59_999, START + 340 * MINUTE), (START + 330 * MINUTE, START + 360 * MINUTE + 1),
            (START + 900 * MINUTE, START + 900 * MINUTE + 5)]
    record_liquidation_gaps(tmp_path / ".etl", "binance", gaps)
    record_liquidation_gaps(tmp_path / ".etl", "bybit", [(START + 1000 * MINUTE, START + 1100 * MINUTE)])
    store(tmp_path, SINK, frames)
    write_input(tmp_path, bars)
    result = run(pipeline(tmp_path, [enrich()], batch_rows=200))
    assert result.exit_code == 0 and "held" not in result.summary, str(result)
    table = stored(tmp_path)
    assert_equal(table, expected(bars, frames, gaps=tuple(gaps)))
    first = int(frames["liquidations"]["ts"].min().timestamp() * 1000)
    nulls = table.filter(pl.col("liquidation_sell_size").is_null())["ts"].dt.epoch("ms").to_list()
    assert nulls == [*range(START, first, MINUTE), *range(START + 300 * MINUTE, START + 361 * MINUTE, MINUTE),
                     START + 900 * MINUTE]


def test_gaps_from_reads_the_ledger_of_the_project_that_captures(tmp_path: Path) -> None:
    bars = candles(400)
    frames = inputs(START, END + 30 * MINUTE)
    record_liquidation_gaps(tmp_path / "capture" / ".etl", "binance", [(START + 100 * MINUTE, START + 110 * MINUTE)])
    store(tmp_path, SINK, frames)
    write_input(tmp_path, bars)
    assert run(pipeline(tmp_path, [enrich(gaps_from="capture/.etl")])).exit_code == 0
    table = stored(tmp_path).with_columns(pl.col("ts").dt.epoch("ms"))
    assert table.filter(pl.col("ts").is_between(START + 100 * MINUTE, START + 109 * MINUTE))[
        "liquidation_buy_size"].null_count() == 10
    assert table.filter(pl.col("ts") == START + 110 * MINUTE)["liquidation_buy_size"].null_count() == 0


def test_every_lets_funding_cover_the_hours_to_its_next_settlement(tmp_path: Path) -> None:
    """Funding settles every 8 hours: with ``every``, the last settlement covers the bars up to the next one."""
    bars = candles(BARS)
    frames = inputs(START, END + 30 * MINUTE)
    frames["funding"] = until(frames, START + 1441 * MINUTE)["funding"]  # the last settlement: 24:00
    store(tmp_path, SINK, frames)
    write_input(tmp_path, bars)
    store(tmp_path / "strict", SINK, frames)
    write_input(tmp_path / "strict", bars)
    strict = run(pipeline(tmp_path / "strict", [enrich(every={})]))
    assert "held rows" in strict.summary
    assert stored(tmp_path / "strict")["ts"].max() == datetime(2024, 1, 2, tzinfo=UTC)

    paced = run(pipeline(tmp_path, [enrich()]))
    assert paced.exit_code == 0 and "held" not in paced.summary, str(paced)
    assert_equal(stored(tmp_path), expected(bars, frames))


def test_a_missing_table_holds_every_bar(tmp_path: Path) -> None:
    frames = inputs(START, END + 30 * MINUTE)
    del frames["positioning"]
    store(tmp_path, SINK, frames)
    write_input(tmp_path, candles(100))
    result = run(pipeline(tmp_path, [enrich()]))
    assert result.exit_code == 0 and "held rows: 100" in result.summary, str(result)
    checkpoint = json.loads((tmp_path / ".etl" / "checkpoints" / "test.json").read_text())
    assert checkpoint["streams"]["ohlcv/BTC/1m"]["next_ms"] == START


def test_a_batch_of_several_streams_is_refused(tmp_path: Path) -> None:
    """The runner hands over one stream per batch; a frame of two symbols (a bulk job) is refused, not mixed."""
    from etl.base import BatchContext, PluginContext, Stream
    from etl.config import SinkSpec
    from etl.plugins import registry

    sinks = (SinkSpec("duckdb", {"path": tmp_path / DATABASE, "memory_limit": "128MB"}, "x"),)
    transform = registry().get("transform", "enrich")(enrich(), PluginContext("test", tmp_path, tmp_path, sinks))
    two = expected(candles(3), inputs(START, END)).select(BAR_COLUMNS).with_columns(
        pl.Series("symbol", ["BTC", "ETH", "ETH"]))
    with pytest.raises(PermanentError, match="the batch of ohlcv/BTC/1m holds several values of 'symbol'"):
        transform.apply(two, BatchContext(Stream("ohlcv", "BTC", "1m"), START, None))


def test_positioning_of_another_period_names_the_ones_stored(tmp_path: Path) -> None:
    store(tmp_path, SINK, inputs(START, END))
    write_input(tmp_path, candles(100))
    result = run(pipeline(tmp_path, [enrich(positioning_timeframe=None)]))
    assert result.exit_code == 1, str(result)
    assert "enrich: positioning of BTC has no 1m rows (it has 1h, 5m); choose one with positioning_timeframe" \
        in result.output


@pytest.mark.parametrize(("settings", "message"), [
    ({"from_sink": "parquet"}, "from_sink 'parquet' is not a sink of pipeline test (its sinks: duckdb)"),
    ({"datasets": ["funding", "trades"]}, "Invalid value 'trades' for 'datasets'"),
    ({"datasets": []}, "name at least one of funding"),
    ({"datasets": ["funding", "funding"]}, "'funding' is listed twice"),
    ({"tables": {"positioning": "ls"}, "datasets": ["funding"]}, "tables names 'positioning', which is not in"),
    ({"every": {"funding": "eight hours"}}, "every.funding must be a duration such as 8h"),
    ({"every": {"liquidations": "1h"}}, "every.liquidations: only funding, open_interest, positioning"),
    ({"tolerance": "8 hours"}, "Invalid value '8 hours' for 'tolerance'"),
    ({"positioning_timeframe": "7m"}, "Invalid value '7m' for 'positioning_timeframe'"),
    ({"wait": ["liquidations"], "datasets": ["funding"]}, "wait names 'liquidations'"),
    ({"tables": {"funding": 3}}, "tables.funding must be a table name"),
    ({"gaps_from": "capture/.etl"}, "gaps_from 'capture/.etl' is not a directory (it names the state dir"),
])
def test_settings_are_checked_naming_file_and_key(tmp_path: Path, settings: dict[str, Any], message: str) -> None:
    path = pipeline(tmp_path, [enrich(**settings)])
    result = run_cli("validate", str(path))
    assert result.exit_code == 2, str(result)
    assert message in result.output and str(path) in result.output and "transforms[0]" in result.output


def test_enrich_applies_to_bars_only(tmp_path: Path) -> None:
    path = pipeline(tmp_path, [enrich()], dataset="funding", timeframe=None)
    result = run_cli("validate", str(path))
    assert result.exit_code == 2 and "does not apply to dataset 'funding'" in result.output, str(result)
