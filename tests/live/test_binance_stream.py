"""``etl stream`` against local fakes of Binance's REST API and websocket streams, with 1-second klines so a
test sees dozens of bars close in seconds.

What it stores over a window must equal, row for row (features included), what ``etl backfill`` stores for
that window: no forming bar, no duplicate, nothing missing, whatever the connection did.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.harness import (
    Venue,
    check_closed_bars_equal_a_backfill_and_sigterm_exits,
    check_faults_change_nothing,
    check_one_stream_fails_and_the_others_stream_on,
    check_sigkill_then_restart_loses_nothing,
)


@pytest.fixture
def venue(binance_venue: Venue) -> Venue:
    return binance_venue


def test_stream_stores_closed_bars_equal_to_a_backfill_and_exits_on_sigterm(venue: Venue, tmp_path: Path) -> None:
    check_closed_bars_equal_a_backfill_and_sigterm_exits(venue, tmp_path / "live")


def test_disconnects_repeats_late_and_garbage_frames_and_missing_bars_change_nothing(venue: Venue,
                                                                                    tmp_path: Path) -> None:
    check_faults_change_nothing(venue, tmp_path / "live")


def test_sigkill_mid_flight_then_a_restart_loses_nothing(venue: Venue, tmp_path: Path) -> None:
    check_sigkill_then_restart_loses_nothing(venue, tmp_path / "live")


def test_an_unknown_symbol_fails_its_stream_and_the_other_streams_on(venue: Venue, tmp_path: Path) -> None:
    """Binance acknowledges the stream of an unknown symbol and stays silent: the REST heal names it."""
    path = venue.pipeline(tmp_path / "live", venue.bars_ago(10))
    path.write_text(path.read_text().replace('"ETHUSDT"', '"ETHUSTD"'))
    check_one_stream_fails_and_the_others_stream_on(venue, tmp_path / "live", path,
                                                    "FAILED live ohlcv/ETHUSTD/1s: binance: unknown symbol 'ETHUSTD'")
