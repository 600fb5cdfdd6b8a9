"""The fakes and the PostgreSQL server the operations tests use, shared with the other suites."""

from fixtures.postgres_server import postgres_dsn, postgres_server
from tests.exchanges.conftest import binance, fast
from tests.yahoo.conftest import fake_yahoo, yahoo_pipeline

__all__ = ["binance", "fake_yahoo", "fast", "postgres_dsn", "postgres_server", "yahoo_pipeline"]
