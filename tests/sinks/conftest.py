"""Sink tests: the PostgreSQL server fixtures (a private server per session, a database per test)."""

from fixtures.postgres_server import postgres_dsn, postgres_server

__all__ = ["postgres_dsn", "postgres_server"]
