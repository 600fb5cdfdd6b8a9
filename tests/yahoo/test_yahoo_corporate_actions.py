"""The corporate_actions dataset: dividends and splits from the chart's events, keyed at the ex-date."""

from __future__ import annotations

from datetime import UTC, datetime


def test_dividends_and_splits_land_at_their_ex_date(fake_yahoo, yahoo_pipeline, etl_cli, stored):
    fake_yahoo.add_recording("1d_AAPL_events")
    path = yahoo_pipeline(["AAPL"], dataset="corporate_actions", start="2020-08-01", end="2020-12-01")

    first = etl_cli("run", str(path))
    again = etl_cli("backfill", str(path), "--pipeline", "stocks", "--start", "2020-08-01", "--end", "2020-12-01")

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    rows = stored(path, "corporate_actions")
    assert rows.select("source", "symbol", "ts", "action", "value", "numerator", "denominator").rows() == [
        ("yahoo", "AAPL", datetime(2020, 8, 31, tzinfo=UTC), "split", 4.0, 4.0, 1.0),
        ("yahoo", "AAPL", datetime(2020, 11, 6, tzinfo=UTC), "dividend", 0.205, None, None),
    ]


def test_corporate_actions_take_no_timeframes(yahoo_pipeline, etl_cli):
    path = yahoo_pipeline(["AAPL"], ["1d"], dataset="corporate_actions")

    result = etl_cli("validate", str(path))

    assert result.exit_code == 2
    assert "Key 'timeframes' in pipelines.stocks.source does not apply to dataset 'corporate_actions'" in result.output
