"""Trades files larger than one parsing block (``trades.BLOCK``): a day at one trade a third of a second is a
CSV of about 14 MB, read in blocks of 4 MB. Damaged bytes are found before any row is used; a CSV that cannot
be parsed after some blocks were read is healed whole from REST, and every trade lands once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from archive_support import FIRST, MONTHS, ROOMY_LIMITS, day_name

from etl.timeframes import DAY, from_ms
from fixtures.fake_binance import FakeBinance
from fixtures.fake_binance_vision import FakeBinanceVision

EVERY_MS = 1000  # three trades a second: 259,200 a day
START = MONTHS[1] + 2 * DAY


@pytest.fixture
def vision() -> Iterator[FakeBinanceVision]:
    with FakeBinanceVision(first_month=f"{from_ms(FIRST):%Y-%m}", trade_every_ms=EVERY_MS) as fake:
        yield fake


@pytest.fixture
def rest() -> Iterator[FakeBinance]:
    with FakeBinance(trade_every_ms=EVERY_MS, **ROOMY_LIMITS) as fake:
        yield fake


@pytest.mark.parametrize("fault", [None, "bad_row", "unreadable"])
def test_a_day_in_several_blocks_lands_whole_whatever_breaks(project, vision, rest, fault):
    name = day_name("BTCUSDT", "aggTrades", START)
    if fault:
        vision.fault(name, fault)
    archive = project(dataset="trades", timeframes=None)
    result = archive.backfill(START, START + DAY)

    assert result.exit_code == 0, result
    assert len(vision.csv_text(f"data/spot/daily/aggTrades/BTCUSDT/{name}")) > 3 * 2**20 * 3, "several blocks"
    assert archive.trades("BTCUSDT") == rest.expected_trades("BTCUSDT", START, START + DAY)
    counters = archive.ledger_counters()["trades/BTCUSDT"]
    assert counters.get("healed_rows", 0) == (0 if fault is None else 3 * DAY // EVERY_MS)
