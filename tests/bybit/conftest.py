"""Fixtures of the Bybit positioning and archive tests: the fakes, started and stopped around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bybit_support import ARCHIVE_FIRST

from etl.timeframes import DAY, iso
from fixtures.fake_bybit import FakeBybit
from fixtures.fake_bybit_public import FakeBybitPublic


@pytest.fixture
def bybit() -> Iterator[FakeBybit]:
    with FakeBybit() as fake:
        yield fake


@pytest.fixture
def public() -> Iterator[FakeBybitPublic]:
    """The fake archive: finished days from six days ago, the RPI column from four days ago on."""
    with FakeBybitPublic(first_day=iso(ARCHIVE_FIRST)[:10], rpi_from=iso(ARCHIVE_FIRST + 2 * DAY)[:10]) as fake:
        yield fake
