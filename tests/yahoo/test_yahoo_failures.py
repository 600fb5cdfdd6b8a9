"""Failures: an unknown symbol fails its own stream only; throttling and flaky answers are retried."""

from __future__ import annotations

import pytest

from etl.testing import Reply
from fixtures.fake_yahoo import chart_error, recording, too_many_requests


def wsu_chart(**changes) -> Reply:
    """The recorded WSU.DE chart with parts of its result replaced."""
    body = recording("1d_WSU.DE")
    body["chart"]["result"][0].update(changes)
    return Reply.json(body)


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
    fake_yahoo.fail_chart("WSU.DE", *faults)
    path = yahoo_pipeline(["WSU.DE"], ["1d"], start="2023-08-01", end="2023-08-10", timeout=1.0)

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    assert stored(path)["close"].to_list() == [34.45000076293945, 34.0, 33.20000076293945]
    [retry] = log_events(result.stderr, "retrying")
    assert retry["what"] == "yahoo chart WSU.DE 1d"
    assert len(fake_yahoo.chart_requests) == len(faults) + 1


@pytest.mark.parametrize(("faults", "message"), [
    pytest.param([Reply.text("<html>not here</html>", 404)] * 2,
                 "yahoo: HTTP 404 fetching WSU.DE: <html>not here</html>", id="404-page"),
    pytest.param([chart_error(422, "Unprocessable Entity", "Invalid input - interval=1d is not supported")] * 2,
                 "yahoo: refused WSU.DE (HTTP 422, Unprocessable Entity: Invalid input - interval=1d is not supported)",
                 id="422-refusal"),
    pytest.param([wsu_chart(timestamp=[1691132400, 1691391600])],
                 "yahoo: chart for WSU.DE has 3 values for 2 timestamps", id="ragged-arrays"),
    pytest.param([wsu_chart(meta={"symbol": "WSU.DE"})],
                 "yahoo: chart for WSU.DE has no meta.exchangeTimezoneName to date its sessions", id="no-timezone"),
])
def test_answers_that_retrying_cannot_fix_fail_the_stream_naming_the_symbol(fake_yahoo, yahoo_pipeline, etl_cli,
                                                                             faults, message):
    fake_yahoo.add_recording("1d_WSU.DE")
    fake_yahoo.fail_chart("WSU.DE", *faults)
    path = yahoo_pipeline(["WSU.DE"], ["1d"], start="2023-08-01", end="2023-08-10")

    result = etl_cli("run", str(path))

    assert result.exit_code == 1
    assert f"FAILED stocks ohlcv/WSU.DE/1d: {message}" in result.stdout


@pytest.mark.parametrize(("option", "value", "message"), [
    ("calendar", "XNYZ", "Invalid value 'XNYZ' for 'calendar' in pipelines.stocks.source"),
    ("requests_per_minute", 0, "Invalid value 0 for 'requests_per_minute' in pipelines.stocks.source"),
    ("timeout", -1.0, "Invalid value -1.0 for 'timeout' in pipelines.stocks.source"),
])
def test_bad_options_are_config_errors(yahoo_pipeline, etl_cli, option, value, message):
    path = yahoo_pipeline(["AAPL"], ["1d"], **{option: value})

    result = etl_cli("validate", str(path))

    assert result.exit_code == 2
    assert message in result.output and str(path) in result.output
