"""Start and stop ``FakeServer``s for tests without paying for the shutdown.

``FakeServer.stop`` waits for the serving thread's poll (up to half a second); a suite starting a server
per test would spend most of its time there. Servers here stop on a daemon thread instead: the port is
released a moment later, and nothing in the test waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .server import FakeServer, Reply, Request


def stop_soon(server: FakeServer) -> None:
    """Stop ``server`` in the background."""
    threading.Thread(target=server.stop, name="fake-server-stop", daemon=True).start()


@contextmanager
def serving(handler: Callable[[Request], Reply]) -> Iterator[FakeServer]:
    """A started FakeServer for the ``with`` block."""
    server = FakeServer(handler).start()
    try:
        yield server
    finally:
        stop_soon(server)
