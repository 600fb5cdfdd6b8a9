"""Failures: an unknown symbol fails its own stream only; throttling and flaky answers are retried."""

from __future__ import annotations

import pytest

from etl.testing import Reply
from fixtures.fake_yahoo import too_many_requests


def test_an_unknown_symbol_fails_its_stream_and_the_others_finish(fake_yahoo, yahoo_pipeline, etl_cli, stored):
    fake_yahoo.add_recording("1d_WSU.DE")
    path = yahoo_pipeline(["NOPE", "WSU.DE"], ["1d"], start="2023-08-01", end="2023-08-10")

    result = etl_cli("run", str(path))

    assert result.exit_code == 1
    assert ("FAILED stocks ohlcv/NOPE/1d: yahoo: unknown symbol 'NOPE' "
            "(Not Found: No data found, symbol may be delisted)") in result.stdout
    assert stored(path)["symbol"].to_list() == ["WSU.DE"] * 3


@pytest.mark.parametrize("faults", [
    pytest.param([too_many_requests(), too_many_requests()], id="429-twice"),
    pytest.param([Reply.text("upstream failed", 503)] * 2, id="503-twice"),
    pytest.param([Reply(200, b"<html>Will be right back...</html>", {"Content-Type": "text/html"})], id="html-page"),
    # curl itself retries a reset on a reused connection once; the second reset reaches the source.
    pytest.param([Reply.reset(), Reply.reset()], id="connection-reset"),
    pytest.param([Reply.timeout(3)], id="timeout"),
])
def test_throttling_and_flaky_answers_are_retried_until_the_bars_land(fake_yahoo, yahoo_pipeline, etl_cli, stored,
                                                                       log_events, faults):
    fake_yahoo.add_recording("1d_WSU.DE")
    fake_yahoo.fail_chart(*faults)
    path = yahoo_pipeline(["WSU.DE"], ["1d"], start="2023-08-01", end="2023-08-10", timeout=1.0)

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    assert stored(path)["close"].to_list() == [34.45000076293945, 34.0, 33.20000076293945]
    [retry] = log_events(result.stderr, "retrying")
    assert retry["what"] == "yahoo chart WSU.DE 1d"
    assert len(fake_yahoo.chart_requests) == len(faults) + 1
