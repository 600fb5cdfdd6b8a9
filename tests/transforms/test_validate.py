"""``validate``: bad rows leave the batch for the quarantine (Parquet, with the reason) and are counted;
with ``on_error = "fail"`` the stream fails naming the row instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from etl_transforms.validate import ValidateTransform
from transform_helpers import candles, counters, pipeline, quarantined, run, stored, write_input

from etl.base import BatchContext, PluginContext, Stream
from etl.report import Report
from etl.timeframes import from_ms, parse_time

START = parse_time("2024-01-01")
MINUTE = 60_000

# row index -> (column changes, reason the quarantine must give)
DEFECTS = {
    5: ({"high": "low", "low": "high"}, "ohlc_consistent"),
    10: ({"close": -1.0}, "positive_prices, ohlc_consistent"),
    15: ({"volume": -3.0}, "non_negative"),
    20: ({"close": None}, "not_null"),
    25: ({"ts": START + 25 * MINUTE + 30_000}, "aligned"),
    30: ({"open": float("nan")}, "finite"),
}


def damaged(frame: pl.DataFrame, defects: dict[int, tuple[dict, str]]) -> pl.DataFrame:
    rows = frame.to_dicts()
    for index, (changes, _) in defects.items():
        original = dict(rows[index])
        for column, value in changes.items():
            rows[index][column] = original[value] if isinstance(value, str) else value
    return pl.DataFrame(rows, schema=frame.schema)


@pytest.fixture
def bad_input(tmp_path: Path) -> pl.DataFrame:
    frame = damaged(candles(60), DEFECTS)
    write_input(tmp_path, frame)
    return frame


def test_bad_rows_are_quarantined_with_their_reason(tmp_path: Path, bad_input: pl.DataFrame) -> None:
    result = run(pipeline(tmp_path, [{"plugin": "validate"}]))
    assert result.exit_code == 0, str(result)
    assert "54 rows, 6 quarantined" in result.summary

    kept = stored(tmp_path)
    assert kept.height == 54
    bad_ts = {from_ms(START + index * MINUTE) for index in DEFECTS if index != 25}
    assert not bad_ts & set(kept["ts"].to_list())
    assert all(ts.second == 0 for ts in kept["ts"])

    aside = quarantined(tmp_path)
    assert aside.height == 6
    assert aside["reason"].to_list() == [reason for _, reason in DEFECTS.values()]
    assert set(aside["transform"]) == {"validate"}
    assert aside.row(0, named=True)["high"] == bad_input["high"][5]
    assert {"source", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"} <= set(aside.columns)
    assert counters(tmp_path)["quarantined"] == 6


def test_rows_already_quarantined_are_not_quarantined_again(tmp_path: Path, bad_input: pl.DataFrame) -> None:
    """A later run re-reads the earlier rows as warm-up (features need 418): only its new bad row counts."""
    path = pipeline(tmp_path, [{"plugin": "validate"}, {"plugin": "features", "include": ["rsi_14"]}])
    assert run(path).exit_code == 0
    more = candles(80).tail(20)
    more = damaged(more, {3: ({"low": 1e9}, "ohlc_consistent")})
    write_input(tmp_path, pl.concat([bad_input, more]))
    second = run(path)
    assert second.exit_code == 0, str(second)
    assert "19 rows, 1 quarantined" in second.summary
    assert quarantined(tmp_path).height == 7
    assert counters(tmp_path)["quarantined"] == 7
    assert stored(tmp_path)["rsi_14"].null_count() == 14


def test_checks_option_runs_only_the_named_checks(tmp_path: Path, bad_input: pl.DataFrame) -> None:
    result = run(pipeline(tmp_path, [{"plugin": "validate", "checks": ["ohlc_consistent"]}]))
    assert result.exit_code == 0, str(result)
    aside = quarantined(tmp_path)
    assert aside["reason"].to_list() == ["ohlc_consistent", "ohlc_consistent"]
    kept = stored(tmp_path)
    assert kept.height == 58
    assert kept["volume"].min() == -3.0


def test_on_error_fail_stops_the_stream_naming_the_first_bad_row(tmp_path: Path, bad_input: pl.DataFrame) -> None:
    result = run(pipeline(tmp_path, [{"plugin": "validate", "on_error": "fail"}]))
    assert result.exit_code == 1
    assert "ohlcv/BTC/1m" in result.output
    assert "6 bad row(s)" in result.output
    assert "2024-01-01T00:05:00Z" in result.output and "ohlc_consistent" in result.output
    assert not (tmp_path / ".etl" / "quarantine").exists() or quarantined(tmp_path).height == 0


def test_funding_checks(tmp_path: Path) -> None:
    rates = [0.0001, -0.0003, None, float("nan"), 0.00025, -0.0001]
    frame = pl.DataFrame({"ts": [START + i * 8 * 60 * MINUTE for i in range(len(rates))], "funding_rate": rates})
    write_input(tmp_path, frame)
    result = run(pipeline(tmp_path, [{"plugin": "validate"}], dataset="funding", timeframe=None))
    assert result.exit_code == 0, str(result)
    assert quarantined(tmp_path, "funding")["reason"].to_list() == ["not_null", "finite"]
    assert stored(tmp_path, "funding")["funding_rate"].to_list() == [0.0001, -0.0003, 0.00025, -0.0001]


def test_open_interest_must_not_be_negative(tmp_path: Path) -> None:
    frame = pl.DataFrame({"ts": [START + i * 60 * MINUTE for i in range(4)],
                          "open_interest": [100.0, -5.0, 120.0, 130.0],
                          "open_interest_value": [1e6, 1e6, -1.0, 1.3e6]})
    write_input(tmp_path, frame)
    result = run(pipeline(tmp_path, [{"plugin": "validate"}], dataset="open_interest", timeframe=None))
    assert result.exit_code == 0, str(result)
    assert quarantined(tmp_path, "open_interest")["reason"].to_list() == ["non_negative", "non_negative"]
    assert stored(tmp_path, "open_interest")["open_interest"].to_list() == [100.0, 130.0]


def test_a_check_for_another_dataset_fails_the_stream(tmp_path: Path) -> None:
    write_input(tmp_path, pl.DataFrame({"ts": [START], "funding_rate": [0.0001]}))
    path = pipeline(tmp_path, [{"plugin": "validate", "checks": ["ohlc_consistent"]}], dataset="funding",
                    timeframe=None)
    result = run(path)
    assert result.exit_code == 1
    assert "check 'ohlc_consistent' does not apply to funding data (funding/BTC)" in result.output
    assert "not_null, finite, not_future" in result.output


@pytest.mark.parametrize(("timeframe", "aligned", "misaligned"), [
    ("1w", "2024-01-08", "2024-01-14"),
    ("1d", "2024-01-02", "2024-01-03T01:00:00"),
    ("4h", "2024-01-01T04:00:00", "2024-01-01T06:00:00"),
    ("1M", "2024-02-01", "2024-02-29"),
])
def test_alignment_follows_utc_boundaries(tmp_path: Path, timeframe: str, aligned: str, misaligned: str) -> None:
    frame = candles(2, timeframe=timeframe).with_columns(
        pl.Series("ts", [parse_time(aligned), parse_time(misaligned)]))
    write_input(tmp_path, frame)
    result = run(pipeline(tmp_path, [{"plugin": "validate"}], timeframe=timeframe))
    assert result.exit_code == 0, str(result)
    assert stored(tmp_path)["ts"].to_list() == [from_ms(parse_time(aligned))]
    assert quarantined(tmp_path)["reason"].to_list() == ["aligned"]


def test_future_rows_are_quarantined(tmp_path: Path) -> None:
    """The runner never asks a source past now, so this check is proven on ``apply`` itself."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    frame = pl.DataFrame({
        "source": ["files"] * 2, "symbol": ["BTC"] * 2, "timeframe": ["1m"] * 2,
        "ts": [now - timedelta(minutes=1), now + timedelta(days=1)],
        "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0], "close": [1.0, 1.0], "volume": [1.0, 1.0],
    }).with_columns(pl.col("ts").dt.cast_time_unit("ms"))
    stream = Stream("ohlcv", "BTC", "1m")
    report = Report("test", tmp_path / "quarantine")
    transform = ValidateTransform({"checks": None, "on_error": "quarantine"},
                                  PluginContext("test", tmp_path, tmp_path))
    kept = transform.apply(frame, BatchContext(stream, 0, report))
    assert kept["ts"].to_list() == [now - timedelta(minutes=1)]
    (file,) = (tmp_path / "quarantine" / "test" / "ohlcv").glob("*.parquet")
    assert pl.read_parquet(file)["reason"].to_list() == ["not_future"]
    assert report.result(stream).counters == {"quarantined": 1}


def test_a_candle_without_volume_is_not_bad(tmp_path: Path) -> None:
    """Mid-price candles have no volume: ohlcv declares volume nullable."""
    write_input(tmp_path, candles(5).with_columns(pl.lit(None, pl.Float64).alias("volume")))
    result = run(pipeline(tmp_path, [{"plugin": "validate"}, {"plugin": "features", "include": ["volume_sma_2"]}]))
    assert result.exit_code == 0, str(result)
    table = stored(tmp_path)
    assert table.height == 5 and table["volume_sma_2"].null_count() == 5
