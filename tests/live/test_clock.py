"""``ETL_CLOCK``: the accelerated clock that lets tests of minute bars see a minute close every second."""

from __future__ import annotations

import time

import pytest

from etl.timeframes import now_ms


def test_the_clock_is_the_wall_clock_unless_etl_clock_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETL_CLOCK", raising=False)
    assert abs(now_ms() - time.time() * 1000) < 50


def test_etl_clock_runs_faster_from_its_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    origin = int(time.time() * 1000) - 1000
    monkeypatch.setenv("ETL_CLOCK", f"60@{origin}")
    first = now_ms()
    assert abs(first - (origin + 60_000)) < 3_000
    time.sleep(0.1)
    assert 5_000 <= now_ms() - first < 9_000
