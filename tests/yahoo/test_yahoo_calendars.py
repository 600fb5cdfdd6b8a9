"""Calendar-aware gaps: ``YahooSource.trading_bars`` lists the bars a market's sessions should produce.

A holiday, a weekend or a night is no gap; a bar missing inside a session is, and ``etl status --gaps``
shows it after a run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from etl import config
from etl.base import Stream
from etl.plugins import registry
from etl.timeframes import parse_time


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def hours(day: tuple[int, int, int], *starts: tuple[int, int]) -> list[datetime]:
    return [utc(*day, hour, minute) for hour, minute in starts]


@pytest.fixture
def yahoo_source(yahoo_pipeline):
    """The configured yahoo source of a pipeline file, as the runner builds it."""

    def build(symbols: list[str], timeframes: list[str], **options):
        spec = config.load(yahoo_pipeline(symbols, timeframes, **options)).pipelines["stocks"]
        return registry().get("source", "yahoo")(spec.source)

    return build


@pytest.mark.parametrize(("symbol", "timeframe", "start", "end", "expected"), [
    pytest.param("AAPL", "1d", "2024-07-01", "2024-07-08",
                 [utc(2024, 7, 1), utc(2024, 7, 2), utc(2024, 7, 3), utc(2024, 7, 5)], id="new-york-holiday"),
    pytest.param("AAPL", "1w", "2024-01-01", "2024-01-29",
                 [utc(2024, 1, 1), utc(2024, 1, 8), utc(2024, 1, 15), utc(2024, 1, 22)], id="weeks-at-monday"),
    pytest.param("AAPL", "1h", "2024-11-29", "2024-11-30",
                 hours((2024, 11, 29), (14, 30), (15, 30), (16, 30), (17, 30)), id="new-york-early-close"),
    pytest.param("AAPL", "90m", "2024-03-11", "2024-03-12",
                 hours((2024, 3, 11), (13, 30), (15, 0), (16, 30), (18, 0), (19, 30)), id="new-york-90m-summer"),
    pytest.param("SAP.DE", "1h", "2023-10-27", "2023-10-31",
                 hours((2023, 10, 27), *((h, 0) for h in range(7, 16)))
                 + hours((2023, 10, 30), *((h, 0) for h in range(8, 17))), id="berlin-across-dst"),
    pytest.param("600497.SS", "1h", "2017-11-15", "2017-11-16",
                 hours((2017, 11, 15), (1, 30), (2, 30), (5, 0), (6, 0)), id="shanghai-lunch-break"),
    pytest.param("600497.SS", "1d", "2024-02-08", "2024-02-20",
                 [utc(2024, 2, 8), utc(2024, 2, 19)], id="shanghai-spring-festival"),
    pytest.param("EURUSD=X", "1d", "2024-03-08", "2024-03-12",
                 [utc(2024, 3, 8), utc(2024, 3, 11)], id="fx-24-5"),
])
def test_trading_bars_follow_the_symbols_exchange(yahoo_source, symbol, timeframe, start, end, expected):
    source = yahoo_source([symbol], [timeframe])

    bars = source.trading_bars(Stream("ohlcv", symbol, timeframe), parse_time(start), parse_time(end))

    assert bars.to_list() == expected


def test_around_the_clock_and_unknown_symbols_use_the_full_grid(yahoo_source):
    source = yahoo_source(["BTC-USD", "ES=F", "ODD.ZZ"], ["1d"])

    for symbol in ("BTC-USD", "ES=F", "ODD.ZZ"):
        assert source.trading_bars(Stream("ohlcv", symbol, "1d"), parse_time("2024-07-01"),
                                   parse_time("2024-07-08")) is None


def test_the_calendar_option_overrides_the_suffix(yahoo_source):
    window = parse_time("2024-10-01"), parse_time("2024-10-05")
    stream = Stream("ohlcv", "ODD.ZZ", "1d")

    shanghai = yahoo_source(["ODD.ZZ"], ["1d"], calendar="XSHG").trading_bars(stream, *window)
    assert shanghai.to_list() == []  # China's National Day week
    assert yahoo_source(["ODD.ZZ"], ["1d"], calendar="none").trading_bars(stream, *window) is None


def test_a_bar_missing_inside_a_session_is_a_gap_but_nights_weekends_and_holidays_are_not(
        fake_yahoo, yahoo_pipeline, etl_cli):
    first = date.today() - timedelta(days=30)
    daily = fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", "1d", "2024-06-24", "2024-07-12")
    hourly = fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", "60m", str(first),
                                     str(first + timedelta(days=14)))
    missing_day, missing_hour = daily.pop(6), hourly.pop(10)  # 2024-07-02, and the 4th bar of the 2nd session
    path = yahoo_pipeline(["AAPL"], ["1d", "1h"], start="2024-06-24", end=str(first + timedelta(days=15)))

    result = etl_cli("run", str(path))
    status = etl_cli("status", str(path), "--gaps")

    assert result.exit_code == 0, result.output
    assert datetime.fromtimestamp(missing_day.ts, UTC).date() == date(2024, 7, 2)
    hour = datetime.fromtimestamp(missing_hour.ts, UTC)
    lines = status.stdout.splitlines()[1:]
    assert [line.split() for line in lines] == [
        ["stocks", "ohlcv/AAPL/1d", "2024-07-02T00:00:00Z", "2024-07-03T00:00:00Z", "1"],
        ["stocks", "ohlcv/AAPL/1h", f"{hour:%Y-%m-%dT%H:%M:%SZ}", f"{hour + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}",
         "1"],
    ]
