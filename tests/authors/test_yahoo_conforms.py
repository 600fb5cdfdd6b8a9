"""The yahoo source passes the source conformance suite against the local fake Yahoo (fixtures/fake_yahoo.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from etl.testing import SourceConformance
from fixtures.fake_yahoo import FakeYahoo

RECENT_FIRST = date.today() - timedelta(days=24)  # Yahoo keeps hourly bars 730 days; the fake enforces it
RECENT_LAST = date.today() - timedelta(days=4)


class YahooConformance(SourceConformance):
    """One fake Yahoo per class, holding made-up bars at real session times."""

    plugin = "yahoo"
    unknown_symbol = "NOPE.DE"
    sessions: tuple[str, str, str, str, str, str]

    @pytest.fixture(scope="class")
    def yahoo(self):
        with FakeYahoo() as fake:
            fake.add_sessions(*self.sessions)
            yield fake

    @pytest.fixture
    def source_server(self, yahoo):
        return yahoo.server

    @pytest.fixture
    def plugin_options(self):
        return {"requests_per_minute": 6000, "timeout": 2.0}


class TestYahooDaily(YahooConformance):
    symbols, timeframes = ("SAP.DE",), ("1d",)
    start, end = "2024-03-01", "2024-03-29"
    sessions = ("SAP.DE", "1d_WSU.DE", "XETR", "1d", "2024-03-01", "2024-03-28")


class TestYahooHourly(YahooConformance):
    symbols, timeframes = ("SAP.DE",), ("1h",)
    start, end = str(RECENT_FIRST), str(RECENT_LAST)
    sessions = ("SAP.DE", "1d_WSU.DE", "XETR", "60m", str(RECENT_FIRST), str(RECENT_LAST))
