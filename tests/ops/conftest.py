"""The exchange fakes the operations tests fetch from, shared with the exchange tests."""

from tests.exchanges.conftest import binance, fast

__all__ = ["binance", "fast"]
