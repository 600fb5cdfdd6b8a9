"""Trades from Binance's ``aggTrades`` through the binance source, against the fake: every trade once, whether
pages end inside a millisecond or the trades of a millisecond arrive after a run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from etl.timeframes import MINUTE, iso, now_ms, parse_time

COLUMNS = ("ts", "trade_id", "price", "size", "side")


@pytest.fixture
def binance() -> Iterator[Any]:
    """The Binance fake with ten times the spot weight limit: these tests are about pages and ids, and pacing
    158 aggTrades pages to 6,000 a minute (tests/exchanges/test_binance_source.py tests pacing) cost seconds."""
    from fixtures.fake_binance import FakeBinance

    with FakeBinance(spot_weight_limit=60_000) as fake:
        yield fake


def trades(binance: Any, fast: dict[str, Any], start: str, **options: Any) -> dict[str, Any]:
    return {"plugin": "binance", "dataset": "trades", "symbols": ["BTCUSDT"], "start": start,
            "base_url": binance.url, **fast, **options}


def stored(market: Any) -> list[tuple[Any, ...]]:
    return sorted(market.rows("trades", "BTCUSDT", COLUMNS), key=lambda row: int(row[1]))


def test_a_busy_backfill_pages_by_id_past_each_full_page(binance, pipeline, fast) -> None:
    """Two hours of trades (3 every 137 ms: 157,665): the first hour's page is full, so the source walks on by
    fromId; pages of 1000 end inside a millisecond (1000 is not a multiple of 3)."""
    market = pipeline(trades(binance, fast, "2024-01-01"))
    result = market.backfill("2024-01-01T00:00:00", "2024-01-01T02:00:00")

    assert result.exit_code == 0, result
    start, end = parse_time("2024-01-01"), parse_time("2024-01-01T02:00:00")
    expected = binance.expected_trades("BTCUSDT", start, end)
    assert stored(market) == sorted(expected, key=lambda row: int(row[1]))
    assert len(expected) == 157_665
    requests = binance.requests_to("/api/v3/aggTrades")
    assert "startTime" in requests[0].query and all("fromId" in r.query for r in requests[1:])
    assert len(requests) == 158, "one page per 1000 trades; the last one reaches past the end"


def test_trades_of_a_millisecond_arriving_after_a_run_are_stored_once(binance, pipeline, fast) -> None:
    """The venue has published only the first of a millisecond's three trades when the first run asks; the
    next run reads that millisecond again, skips the trade it has and stores the other two."""
    start = now_ms() - 5 * MINUTE
    market = pipeline(trades(binance, fast, iso(start)))
    expected = binance.expected_trades("BTCUSDT", start, now_ms() - MINUTE)
    first_of_a_millisecond = next(int(row[1]) for row in expected[100:] if int(row[1]) % 3 == 0)
    binance.trades_published = first_of_a_millisecond

    assert market.run().exit_code == 0
    assert int(stored(market)[-1][1]) == first_of_a_millisecond
    binance.trades_published = None
    second = market.run()

    assert second.exit_code == 0, second
    rows = stored(market)
    ids = [int(row[1]) for row in rows]
    assert len(ids) == len(set(ids)), "no trade twice"
    assert ids == list(range(ids[0], ids[-1] + 1)), "no trade missing"
    assert {first_of_a_millisecond + 1, first_of_a_millisecond + 2} <= set(ids)
    assert rows[: len(expected)] == sorted(expected, key=lambda row: int(row[1]))[: len(rows)]
