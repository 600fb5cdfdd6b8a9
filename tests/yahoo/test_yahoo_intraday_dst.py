"""Intraday bars across the latest DST change of New York and of Berlin: stored at Yahoo's UTC bar starts.

Yahoo keeps 1h bars for 730 days, so the test uses the most recent change of each zone rather than a
fixed date; expected bar starts are computed from the exchange's local opening time with zoneinfo.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars
import pytest


def latest_dst_change(zone: ZoneInfo, before: date) -> date:
    """The most recent day on or before ``before`` whose UTC offset differs from the day before's."""
    def offset(day: date) -> timedelta | None:
        return datetime.combine(day, time(12), zone).utcoffset()

    day = before
    while offset(day) == offset(day - timedelta(days=1)):
        day -= timedelta(days=1)
    return day


def sessions_around(calendar: str, change: date) -> tuple[date, date]:
    """The last session before the DST change and the first one after it."""
    sessions = [s.date() for s in exchange_calendars.get_calendar(calendar).sessions_in_range(
        change - timedelta(days=10), change + timedelta(days=10))]
    return max(s for s in sessions if s < change), min(s for s in sessions if s >= change)


@pytest.mark.parametrize(("symbol", "meta_from", "calendar", "zone", "opens", "bars_per_session"), [
    ("AAPL", "1d_AAPL_events", "XNYS", "America/New_York", time(9, 30), 7),
    ("SAP.DE", "1d_WSU.DE", "XETR", "Europe/Berlin", time(9, 0), 9),
])
def test_hourly_bars_across_the_latest_dst_change(fake_yahoo, yahoo_pipeline, etl_cli, stored, symbol, meta_from,
                                                   calendar, zone, opens, bars_per_session):
    local = ZoneInfo(zone)
    change = latest_dst_change(local, datetime.now(UTC).date() - timedelta(days=5))
    before, after = sessions_around(calendar, change)
    fake_yahoo.add_sessions(symbol, meta_from, calendar, "60m", str(before - timedelta(days=3)),
                            str(after + timedelta(days=3)))
    path = yahoo_pipeline([symbol], ["1h"], start=str(before), end=str(after + timedelta(days=1)))

    result = etl_cli("run", str(path))

    assert result.exit_code == 0, result.output
    expected = [
        (datetime.combine(day, opens, local) + timedelta(hours=hour)).astimezone(UTC)
        for day in (before, after) for hour in range(bars_per_session)
    ]
    assert stored(path)["ts"].to_list() == expected
    assert expected[0].time() != expected[bars_per_session].time()  # the UTC open moved by an hour
