"""Requests are spaced to the plan's budget: counted per window by the fake, never timed by the test."""

from __future__ import annotations

from etl_polygon import PolygonSource

from etl import SourceConfig
from fixtures.exchanges.server import SlidingWindow


def test_requests_never_pass_the_budget_the_fake_counts_in_any_window(fake_polygon, polygon_pipeline):
    fake_polygon.page_size = 2
    fake_polygon.window = SlidingWindow(5, 1.0)  # a tier of 5 requests a second; the client spaces them
    pipeline = polygon_pipeline(requests_per_minute=250)  # one every 0.24 s: 5 take 0.96 s

    result = pipeline.run()

    assert result.exit_code == 0, result
    assert len(fake_polygon.aggs_requests) == 12, "24 bars in pages of 2"
    assert fake_polygon.statuses[429] == 0 and fake_polygon.peak <= 5
    assert len(pipeline.rows()) == 24


def test_the_free_tier_is_the_default_one_request_every_12_seconds():
    source = PolygonSource(SourceConfig("polygon", "ohlcv", ("AAPL",), ("1d",), None, None,
                                        {"api_key": "pk_unit", "base_url": "http://127.0.0.1:9"}))

    limiter = source.client.limiter

    assert (limiter.capacity, limiter.rate * 60) == (1, 5), "never a burst: 5 in any minute"
