"""Stop a ``FakeServer`` without waiting for it.

``FakeServer.stop`` waits for the serving thread's next poll; a fixture that starts many servers can
hand the stop to a daemon thread instead: the port is released a moment later, and nothing waits.
"""

from __future__ import annotations

import threading

from .server import FakeServer


def stop_soon(server: FakeServer) -> None:
    """Stop ``server`` in the background."""
    threading.Thread(target=server.stop, name="fake-server-stop", daemon=True).start()
