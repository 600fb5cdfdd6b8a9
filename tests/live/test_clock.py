"""``ETL_CLOCK``: the accelerated clock that lets tests of minute bars see a minute close every second."""

from __future__ import annotations

import time

import pytest

from etl.timeframes import now_ms


def test_the_clock_is_the_wall_clock_unless_etl_clock_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two readings of the wall clock, however long a loaded machine takes between them."""
    monkeypatch.delenv("ETL_CLOCK", raising=False)
    before = time.time() * 1000
    now = now_ms()
    assert before - 1 <= now <= time.time() * 1000 + 1


def test_etl_clock_runs_faster_from_its_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    """60 times the wall clock from its origin: bounded by the wall time measured around each reading, so a
    sleep that overruns on a loaded machine moves the bounds with it."""
    origin = int(time.time() * 1000) - 1000
    monkeypatch.setenv("ETL_CLOCK", f"60@{origin}")
    began = time.time() * 1000
    first = now_ms()
    ended = time.time() * 1000
    assert origin + 60 * (began - origin) - 60 <= first <= origin + 60 * (ended - origin) + 60
    time.sleep(0.1)
    since = time.time() * 1000
    second = now_ms()
    until = time.time() * 1000
    assert 60 * (since - ended) - 60 <= second - first <= 60 * (until - began) + 60
