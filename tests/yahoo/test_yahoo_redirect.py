"""``base_url`` sends every Yahoo host yfinance calls (cookie, crumb, chart) to one address.

Runs ``etl`` in a fresh process: yfinance keeps its crumb for the life of a process, so only a new one
shows the whole cookie and crumb dance.
"""

from __future__ import annotations

from etl.testing.pipelines import run_subprocess


def test_cookie_crumb_and_chart_requests_all_reach_the_base_url(fake_yahoo, yahoo_pipeline, tmp_path, stored):
    fake_yahoo.add_recording("1d_WSU.DE")
    path = yahoo_pipeline(["WSU.DE"], ["1d"], start="2023-08-01", end="2023-08-10")

    result = run_subprocess("run", str(path), env={"XDG_CACHE_HOME": str(tmp_path / "cache")})

    assert result.exit_code == 0, result.stdout + result.stderr
    paths = {request.path for request in fake_yahoo.server.requests}
    assert paths == {"/fc.yahoo.com/", "/query1.finance.yahoo.com/v1/test/getcrumb",
                     "/query2.finance.yahoo.com/v8/finance/chart/WSU.DE"}
    [chart] = fake_yahoo.chart_requests
    assert chart.query["crumb"] == "haT3oykhHqZ"
    assert chart.query["interval"] == "1d" and chart.query["includePrePost"] == "false"
    assert "Chrome" in chart.headers["User-Agent"]
    assert len(stored(path)) == 3
