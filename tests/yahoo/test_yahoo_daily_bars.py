"""Daily and weekly bars from the fake Yahoo through the real yfinance HTTP path into DuckDB.

Daily bars are keyed at the exchange's session date, 00:00 UTC, however the session's open moves in
UTC across DST; weekly bars at their Monday.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl

from fixtures.fake_yahoo import recording


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_new_york_daily_bars_keep_their_session_date_across_the_dst_change(fake_yahoo, yahoo_pipeline, etl_cli,
                                                                           stored):
    fake_yahoo.add_recording("1d_AAPL_events")
    path = yahoo_pipeline(["AAPL"], ["1d"], start="2020-10-28", end="2020-11-05")

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    rows = stored(path)
    # 2020-10-30 opened 13:30 UTC (EDT), 2020-11-02 at 14:30 UTC (EST): both keyed at their date.
    assert rows["ts"].to_list() == [utc(2020, 10, 28), utc(2020, 10, 29), utc(2020, 10, 30), utc(2020, 11, 2),
                                    utc(2020, 11, 3), utc(2020, 11, 4)]
    chart = recording("1d_AAPL_events")["chart"]["result"][0]
    quote = chart["indicators"]
    first = chart["timestamp"].index(1603891800)  # 2020-10-28 13:30 UTC
    assert rows["open"].to_list() == quote["quote"][0]["open"][first:first + 6]
    assert rows["close"].to_list() == quote["quote"][0]["close"][first:first + 6]
    assert rows["adj_close"].to_list() == quote["adjclose"][0]["adjclose"][first:first + 6]
    assert rows["volume"].to_list() == [float(v) for v in quote["quote"][0]["volume"][first:first + 6]]
    assert set(rows["source"]) == {"yahoo"} and set(rows["timeframe"]) == {"1d"}


def test_berlin_daily_bars_keep_their_session_date_across_the_dst_change(fake_yahoo, yahoo_pipeline, etl_cli,
                                                                         stored):
    bars = fake_yahoo.add_sessions("SAP.DE", "1d_WSU.DE", "XETR", "1d", "2023-10-25", "2023-11-01")
    path = yahoo_pipeline(["SAP.DE"], ["1d"], start="2023-10-26", end="2023-11-01")

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    opens = {datetime.fromtimestamp(bar.ts, UTC).strftime("%m-%d %H:%M") for bar in bars}
    assert {"10-27 07:00", "10-30 08:00"} <= opens  # 09:00 CEST, then 09:00 CET
    rows = stored(path)
    assert rows["ts"].to_list() == [utc(2023, 10, 26), utc(2023, 10, 27), utc(2023, 10, 30), utc(2023, 10, 31)]
    assert rows["open"].to_list() == [100.25, 100.5, 100.75, 101.0]
    assert rows["adj_close"].to_list() == [50.375, 50.5, 50.625, 50.75]


def test_shanghai_daily_bars_open_on_the_previous_utc_day_are_not_missed(fake_yahoo, yahoo_pipeline, etl_cli,
                                                                         stored):
    fake_yahoo.add_sessions("600519.SS", "1d_600497.SS_leading_null_row", "XSHG", "1d", "2024-01-02",
                            "2024-01-10")
    fake_yahoo.add_sessions("BHP.AX", "1d_600497.SS_leading_null_row", "XASX", "1d", "2024-01-02", "2024-01-10")
    path = yahoo_pipeline(["600519.SS", "BHP.AX"], ["1d"], start="2024-01-03", end="2024-01-06")

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    rows = stored(path)
    # Sydney opens 10:00 AEDT, 23:00 UTC the day before: still keyed at its own date.
    expected = [utc(2024, 1, 3), utc(2024, 1, 4), utc(2024, 1, 5)]
    assert rows.filter(pl.col("symbol") == "BHP.AX")["ts"].to_list() == expected
    assert rows.filter(pl.col("symbol") == "600519.SS")["ts"].to_list() == expected


def test_weekly_bars_are_keyed_at_their_monday(fake_yahoo, yahoo_pipeline, etl_cli, stored):
    fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", "1wk", "2024-01-02", "2024-02-02")
    path = yahoo_pipeline(["AAPL"], ["1w"], start="2024-01-01", end="2024-02-05")

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    # 2024-01-15 was a holiday (the week opened on Tuesday): still keyed at Monday.
    assert stored(path)["ts"].to_list() == [utc(2024, 1, 1), utc(2024, 1, 8), utc(2024, 1, 15), utc(2024, 1, 22),
                                            utc(2024, 1, 29)]


def test_adjusted_scales_prices_by_the_adjusted_close(fake_yahoo, yahoo_pipeline, etl_cli, stored):
    fake_yahoo.add_recording("1d_AAPL_events")
    path = yahoo_pipeline(["AAPL"], ["1d"], start="2020-08-31", end="2020-09-01", adjusted=True)

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    rows = stored(path)
    assert "adj_close" not in rows.columns
    quote = recording("1d_AAPL_events")["chart"]["result"][0]["indicators"]
    ratio = quote["adjclose"][0]["adjclose"][0] / quote["quote"][0]["close"][0]
    assert rows["close"].to_list() == [quote["quote"][0]["close"][0] * ratio]
    assert rows["open"].to_list() == [quote["quote"][0]["open"][0] * ratio]
    assert rows["high"].to_list() == [quote["quote"][0]["high"][0] * ratio]
    assert rows["low"].to_list() == [quote["quote"][0]["low"][0] * ratio]


def test_an_incremental_run_continues_from_the_checkpoint(fake_yahoo, yahoo_pipeline, etl_cli, stored):
    fake_yahoo.add_sessions("SAP.DE", "1d_WSU.DE", "XETR", "1d", "2024-03-01", "2024-03-29")
    etl_cli("run", str(yahoo_pipeline(["SAP.DE"], ["1d"], start="2024-03-04", end="2024-03-11")))
    path = yahoo_pipeline(["SAP.DE"], ["1d"], start="2024-03-04", end="2024-03-18")

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    days = [ts.day for ts in stored(path)["ts"]]
    assert days == [4, 5, 6, 7, 8, 11, 12, 13, 14, 15]
    second = fake_yahoo.chart_requests[-1]
    # The checkpoint is 03-09 (after the last bar, 03-08); the request starts a day earlier for early opens.
    assert datetime.fromtimestamp(int(second.query["period1"]), UTC) == utc(2024, 3, 8)


def test_features_are_the_same_whether_loaded_in_one_run_or_from_a_checkpoint(fake_yahoo, yahoo_pipeline,
                                                                               etl_cli, stored, tmp_path):
    # Warm-up bars are turned into time with row_interval_ms; for a market closed at weekends and on
    # holidays a day of warm-up per bar would miss Friday's close when a run starts on Monday.
    fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", "1d", "2024-01-01", "2024-05-01")
    features = ["return_1", "sma_20"]
    whole = yahoo_pipeline(["AAPL"], ["1d"], start="2024-01-02", end="2024-05-01", features=features)
    assert etl_cli("run", str(whole)).exit_code == 0
    in_one_run = stored(whole)
    (tmp_path / "data" / "yahoo.duckdb").unlink()
    (tmp_path / ".etl").rename(tmp_path / "first-run-state")

    for end in ("2024-03-11", "2024-03-19", "2024-04-01", "2024-05-01"):  # Monday, Tuesday, after Easter
        assert etl_cli("run", str(yahoo_pipeline(["AAPL"], ["1d"], start="2024-01-02", end=end,
                                                 features=features))).exit_code == 0

    resumed = stored(whole)
    assert resumed["ts"].to_list() == in_one_run["ts"].to_list()
    assert resumed["return_1"].to_list() == in_one_run["return_1"].to_list()
    assert resumed["sma_20"].to_list() == in_one_run["sma_20"].to_list()
    assert in_one_run["return_1"].null_count() == 1 and in_one_run["sma_20"].null_count() == 19


def test_monthly_bars_are_keyed_at_the_first_of_the_month(fake_yahoo, yahoo_pipeline, etl_cli, stored):
    fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", "1mo", "2023-11-01", "2024-03-28")
    bars = fake_yahoo.add_sessions("BHP.AX", "1d_600497.SS_leading_null_row", "XASX", "1mo", "2023-11-01",
                                   "2024-03-28")
    path = yahoo_pipeline(["AAPL", "BHP.AX"], ["1M"], start="2023-11-01", end="2024-04-01")

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    # Sydney's first February session opened on 31 January in UTC: still February's bar.
    assert datetime.fromtimestamp(bars[3].ts, UTC) == utc(2024, 1, 31, 23)
    months = [utc(2023, 11, 1), utc(2023, 12, 1), utc(2024, 1, 1), utc(2024, 2, 1), utc(2024, 3, 1)]
    rows = stored(path)
    for symbol in ("AAPL", "BHP.AX"):
        mine = rows.filter(pl.col("symbol") == symbol)
        assert mine["ts"].to_list() == months
        assert mine["open"].to_list() == [100.0, 100.25, 100.5, 100.75, 101.0]
    assert set(rows["timeframe"]) == {"1M"}
    assert fake_yahoo.chart_requests[0].query["interval"] == "1mo"


def test_monthly_bars_continue_from_the_checkpoint_and_skip_the_month_still_open(fake_yahoo, yahoo_pipeline,
                                                                                  etl_cli, stored, tmp_path):
    today = datetime.now(UTC).date()
    fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", "1mo", f"{today.year - 1}-01-01", today.isoformat(),
                            live_row=True)
    first = yahoo_pipeline(["AAPL"], ["1M"], start=f"{today.year - 1}-01-01", end=f"{today.year - 1}-07-01")
    assert etl_cli("run", str(first)).exit_code == 0
    path = yahoo_pipeline(["AAPL"], ["1M"], start=f"{today.year - 1}-01-01")

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    stamps = stored(path)["ts"].to_list()
    closed_months = (today.year - (today.year - 1)) * 12 + today.month - 1
    assert stamps == [utc(today.year - 1 + month // 12, month % 12 + 1, 1) for month in range(closed_months)]
    checkpoint = json.loads((tmp_path / ".etl" / "checkpoints" / "stocks.json").read_text())
    assert checkpoint["streams"]["ohlcv/AAPL/1M"]["next"] == f"{today.year}-{today.month:02d}-01T00:00:00Z"
