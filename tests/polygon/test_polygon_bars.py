"""Polygon aggregates through the whole CLI into DuckDB: pages, the adjusted flag, daily stamps, extras."""

from __future__ import annotations

import pytest

from etl.timeframes import DAY, HOUR, parse_time

START, END = parse_time("2024-01-01"), parse_time("2024-01-02")


def test_bars_land_page_by_page_and_every_page_carries_the_key(fake_polygon, polygon_pipeline, polygon_key):
    fake_polygon.page_size = 5
    pipeline = polygon_pipeline()

    result = pipeline.run()

    assert result.exit_code == 0, result
    bars = fake_polygon.expected(START, END, HOUR)
    expected = [("polygon", "X:BTCUSD", ts, open_, close) for ts, open_, close in bars]
    assert pipeline.rows() == expected and len(expected) == 24
    requests = fake_polygon.aggs_requests
    assert len(requests) == 5, "24 bars in pages of 5"
    assert requests[0].path == f"/v2/aggs/ticker/X:BTCUSD/range/1/hour/{START}/{END - 1}"
    assert requests[0].query == {"adjusted": "true", "sort": "asc", "limit": "50000"}
    assert all("cursor" in request.query for request in requests[1:]), "next_url, followed as given"
    assert {request.headers["Authorization"] for request in requests} == {f"Bearer {polygon_key}"}
    assert not any("apiKey" in request.query for request in requests)


def test_vwap_and_trades_are_kept_as_extras(fake_polygon, polygon_pipeline):
    pipeline = polygon_pipeline()

    assert pipeline.run().exit_code == 0

    first = fake_polygon.bar(START, HOUR)
    assert pipeline.rows("vwap, trades")[0] == (first["vw"], first["n"])


@pytest.mark.parametrize(("adjusted", "factor"), [(True, 1.0), (False, 4.0)])
def test_the_adjusted_option_is_sent_and_decides_the_prices(fake_polygon, polygon_pipeline, adjusted, factor):
    pipeline = polygon_pipeline(adjusted=adjusted)

    assert pipeline.run().exit_code == 0

    assert {request.query["adjusted"] for request in fake_polygon.aggs_requests} == {str(adjusted).lower()}
    assert [row[2:] for row in pipeline.rows()] == fake_polygon.expected(START, END, HOUR, factor)


def test_daily_bars_of_a_stock_stamped_at_new_york_midnight_are_stored_at_utc_midnight(fake_polygon,
                                                                                       polygon_pipeline):
    pipeline = polygon_pipeline(("AAPL",), timeframes=["1d"], end="2024-01-11")

    assert pipeline.run().exit_code == 0

    stamps = [row[2] for row in pipeline.rows()]
    assert stamps == list(range(START, parse_time("2024-01-11"), DAY))
    assert [row[2:] for row in pipeline.rows()] == fake_polygon.expected(START, parse_time("2024-01-11"), DAY)


def test_delayed_data_is_data(fake_polygon, polygon_pipeline):
    fake_polygon.delayed = True
    pipeline = polygon_pipeline()

    assert pipeline.run().exit_code == 0
    assert len(pipeline.rows()) == 24


def test_the_bar_still_forming_is_never_stored(fake_polygon, polygon_pipeline, frozen_clock):
    from etl.timeframes import floor_ts

    pipeline = polygon_pipeline(end=None, start="2024-01-01")
    fake_polygon.listed = floor_ts(frozen_clock, "1h") - 3 * HOUR  # an hour turning mid-test would add a bar

    assert pipeline.run().exit_code == 0

    assert [row[2] for row in pipeline.rows()] == [fake_polygon.listed + hour * HOUR for hour in range(3)]


def test_a_dry_run_describes_the_requests_under_polygons_ticker(polygon_pipeline, etl_cli):
    pipeline = polygon_pipeline(("BTC",), symbol_map={"BTC": {"polygon": "X:BTCUSD"}})

    result = etl_cli("backfill", str(pipeline.path), "--pipeline", "stocks", "--start", "2024-01-01",
                     "--end", "2024-01-02", "--dry-run")

    assert result.exit_code == 0, result
    assert "ohlcv/X:BTCUSD/1h: aggregates 1 hour 2024-01-01T00:00:00Z .. 2024-01-02T00:00:00Z, pages of up to " \
           "50000 bars, at most 60000 requests a minute" in result.stdout
