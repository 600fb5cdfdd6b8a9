"""Helpers for testing sources, transforms and sinks, for this project and for plugin authors."""

from .server import FakeServer, Reply, Request

__all__ = ["FakeServer", "Reply", "Request"]
