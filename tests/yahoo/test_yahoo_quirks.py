"""Yahoo's quirks: all-null rows, the live row after the last bar, empty ranges, intraday history limits."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from fixtures.fake_yahoo import recording

DAY_S = 86_400


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_all_null_rows_are_dropped_and_counted_and_the_live_row_never_stored(fake_yahoo, yahoo_pipeline, etl_cli,
                                                                              stored, log_events):
    # The recording: a first row of nulls, 7 bars, then the live quote at 2017-11-27 07:00:03 UTC.
    fake_yahoo.add_recording("1d_600497.SS_leading_null_row")
    path = yahoo_pipeline(["600497.SS"], ["1d"], start="2017-11-15", end="2017-11-28")

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith(", null rows dropped: 1")
    rows = stored(path)
    assert rows["ts"].to_list() == [utc(2017, 11, 16), utc(2017, 11, 17), utc(2017, 11, 20), utc(2017, 11, 21),
                                    utc(2017, 11, 22), utc(2017, 11, 23), utc(2017, 11, 24)]
    quote = recording("1d_600497.SS_leading_null_row")["chart"]["result"][0]["indicators"]["quote"][0]
    assert rows["close"].to_list() == quote["close"][1:8]
    assert rows["volume"].to_list() == [float(v) for v in quote["volume"][1:8]]
    [nulls] = log_events(result.stderr, "yahoo all-null rows dropped")
    assert (nulls["stream"], nulls["rows"]) == ("ohlcv/600497.SS/1d", 1)
    [live] = log_events(result.stderr, "yahoo live row dropped")
    assert live["ts"] == "2017-11-27T07:00:03Z"


def test_intraday_live_row_is_never_stored(fake_yahoo, yahoo_pipeline, etl_cli, stored, log_events):
    day = date.today() - timedelta(days=7)
    bars = fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", "5m", str(day), str(day + timedelta(days=4)),
                                   live_row=True)
    path = yahoo_pipeline(["AAPL"], ["5m"], start=str(day))

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    assert bars[-1].ts % 60 == 37  # the live quote, served after the last bar
    expected = [datetime.fromtimestamp(bar.ts, UTC) for bar in bars[:-1]]
    assert stored(path)["ts"].to_list() == expected
    assert len(log_events(result.stderr, "yahoo live row dropped")) == 1


def test_the_bar_still_forming_is_never_stored(fake_yahoo, yahoo_pipeline, etl_cli, stored):
    # Hourly bars at :59 past the hour: the core's window ends at the current hour, yet the bar that started
    # a minute before it is still forming (unless the run happens at :59).
    hour = int(time.time()) // 3600 * 3600
    stamps = [hour - 3600 * back - 60 for back in range(5, -3, -1)]
    fake_yahoo.add_bars("AAPL", "1d_AAPL_events", "60m", stamps)
    path = yahoo_pipeline(["AAPL"], ["1h"], start=str(date.today() - timedelta(days=2)))

    began = time.time()
    result = etl_cli("run", str(path))
    ended = time.time()

    assert result.exit_code == 0, result.output
    rows = [ts.timestamp() for ts in stored(path)["ts"]]
    closed_by = {moment: [ts for ts in stamps if ts + 3600 <= moment] for moment in (began, ended)}
    assert rows in closed_by.values()  # the same list unless a bar closed during the run


def test_an_empty_range_is_no_error(fake_yahoo, yahoo_pipeline, etl_cli, log_events):
    # The recorded answer for a range without bars: meta, "quote": [{}], no timestamp.
    fake_yahoo.add_recording("1m_AAPL_empty_weekend")
    today = date.today()
    saturday = today - timedelta(days=(today.weekday() - 5) % 7 + (7 if today.weekday() in (5, 6) else 0))
    path = yahoo_pipeline(["AAPL"], ["1m"], start=str(saturday), end=str(saturday + timedelta(days=2)))

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    assert "etl run ok: 1 streams, 0 rows" in result.stdout
    assert len(fake_yahoo.chart_requests) == 1
    assert not log_events(result.stderr, "stream failed")


def test_a_holiday_alone_is_no_error(fake_yahoo, yahoo_pipeline, etl_cli):
    fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", "1d", "2024-12-20", "2024-12-31")
    path = yahoo_pipeline(["AAPL"], ["1d"], start="2024-12-25", end="2024-12-26")

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    assert "etl run ok: 1 streams, 0 rows" in result.stdout


@pytest.mark.parametrize(("timeframe", "yahoo", "kept_days", "asked_days", "request_days"), [
    ("1m", "1m", 30, 45, 7),
    ("1h", "60m", 730, 760, 730),
])
def test_windows_older_than_yahoo_keeps_are_clamped_with_a_warning(fake_yahoo, yahoo_pipeline, etl_cli, stored,
                                                                  log_events, timeframe, yahoo, kept_days,
                                                                  asked_days, request_days):
    today = date.today()
    bars = fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", yahoo, str(today - timedelta(days=asked_days)),
                                   str(today - timedelta(days=1)))
    path = yahoo_pipeline(["AAPL"], [timeframe], start=str(today - timedelta(days=asked_days)))

    began = time.time()
    result = etl_cli("run", str(path))
    ended = time.time()

    assert result.exit_code == 0, result.output
    [warning] = log_events(result.stderr, "yahoo history limit")
    assert f"Yahoo keeps {timeframe} bars for the last {kept_days} days only" in warning["note"]
    # The fake refuses, as Yahoo does, any request reaching too far back or spanning too long.
    requests = fake_yahoo.chart_requests
    assert all(int(r.query["period2"]) - int(r.query["period1"]) <= request_days * DAY_S for r in requests)
    assert len(requests) == -(-kept_days // request_days)
    rows = stored(path)["ts"].to_list()
    first = rows[0].timestamp()
    assert began - kept_days * DAY_S + 3600 <= first < ended - kept_days * DAY_S + 3600 + 86_400
    assert rows == [datetime.fromtimestamp(bar.ts, UTC) for bar in bars if bar.ts >= first]


def test_dry_run_shows_the_requests_and_the_clamp(fake_yahoo, yahoo_pipeline, etl_cli):
    path = yahoo_pipeline(["AAPL"], ["1m", "1d"])
    start = str(date.today() - timedelta(days=40))

    result = etl_cli("backfill", str(path), "--pipeline", "stocks", "--start", start, "--dry-run")

    assert result.exit_code == 0, result.output
    one_minute, daily = result.stdout.splitlines()
    assert one_minute.startswith("ohlcv/AAPL/1m: 5 chart request(s) of up to 7 days, ")
    note = f"(Yahoo keeps 1m bars for the last 30 days only; window start moved from {start}T00:00:00Z to "
    assert note in one_minute
    assert daily.startswith(f"ohlcv/AAPL/1d: 1 chart request(s) of up to 3650 days, {start}T00:00:00Z .. ")
    assert not fake_yahoo.server.requests
