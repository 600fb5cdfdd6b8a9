"""The bar still forming on the exchange is never stored, whichever source reads it; the next run stores it
once it has closed.

The runner bounds each run by the local clock; here the exchange's clock is 2.5 minutes behind, so the
exchange still builds (and serves, partial) a bar the runner already asks for. Setting the exchange's
clock back to ours closes it.
"""

from __future__ import annotations

import pytest

from etl.timeframes import MINUTE, floor_ts, iso, now_ms

BINANCE_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume",
                   "taker_buy_quote_volume")
BYBIT_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "turnover")
CASES = {
    "binance": ("binance", {"plugin": "binance"}, BINANCE_COLUMNS,
                lambda fake, start, end: fake.expected_klines("BTCUSDT", "1m", start, end)),
    "bybit": ("bybit", {"plugin": "bybit", "market": "linear"}, BYBIT_COLUMNS,
              lambda fake, start, end: fake.expected_klines("BTCUSDT", "linear", "1", start, end)),
    "ccxt": ("binance", {"plugin": "ccxt", "exchange": "binance"}, BINANCE_COLUMNS[:6],
             lambda fake, start, end: [row[:6] for row in fake.expected_klines("BTCUSDT", "1m", start, end)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_open_bar_is_never_stored_and_the_next_run_takes_it_once_closed(case, request, pipeline, fast):
    fake_name, source, columns, expected = CASES[case]
    fake = request.getfixturevalue(fake_name)
    fake.clock_offset_ms = -150_000
    start = floor_ts(now_ms() - 30 * MINUTE, "1m")
    market = pipeline({**source, "symbols": ["BTCUSDT"], "timeframes": ["1m"], "start": iso(start),
                       "base_url": fake.url, **fast})
    open_bar = floor_ts(fake.now_ms(), "1m")

    first = market.run()

    assert first.exit_code == 0, first
    assert fake.open_bars_served >= 1, "the fake did serve the forming bar"
    assert "open bars deferred: 1" in first.summary
    stored = market.rows("ohlcv", "BTCUSDT", columns)
    last = stored[-1][0]
    assert open_bar - MINUTE <= last < floor_ts(fake.now_ms(), "1m"), "stored up to the last bar closed there"
    assert stored == expected(fake, start, last + MINUTE), "final values only, never a partial bar"

    fake.clock_offset_ms = 0
    second = market.run()

    assert second.exit_code == 0, second
    assert "open bars deferred" not in second.summary
    stored = market.rows("ohlcv", "BTCUSDT", columns)
    assert stored[-1][0] > open_bar
    assert stored == expected(fake, start, stored[-1][0] + MINUTE), "the bar left open is now stored, final"
