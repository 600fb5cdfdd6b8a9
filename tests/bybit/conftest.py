"""Fixtures of the Bybit positioning and archive tests: the fakes, started and stopped around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixtures.fake_bybit import FakeBybit


@pytest.fixture
def bybit() -> Iterator[FakeBybit]:
    with FakeBybit() as fake:
        yield fake
