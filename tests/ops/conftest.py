"""The exchange fakes and the PostgreSQL server the operations tests use, shared with the other suites."""

from fixtures.postgres_server import postgres_dsn, postgres_server
from tests.exchanges.conftest import binance, fast

__all__ = ["binance", "fast", "postgres_dsn", "postgres_server"]
