"""Waiting for a sink file another process holds, and handing one over to a process that waits for it.

DuckDB lets one process open a file for writing and no other even read it meanwhile. A batch run holds its files
only while it writes, but ``etl stream`` writes all day: without a handoff, a cron ``etl run`` into the same
file, or its ``enrich`` reading what the stream stored, would wait out ``sink_wait`` and be locked out each time.

So a process that finds a file held asks for it: while it waits it keeps a request file beside it fresh
(``Sink.request_file``: ``<file>.wanted``), and removes it once it has the file or gives up. A process that
yields (``etl stream``'s committer) looks for a fresh request after each commit; when there is one, it closes its
sinks and opens them again only once the request is gone or stale (its waiter gave up or died). A batch run does
not yield: it ends soon, and two yielding streams would only trade the file commit by commit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from .errors import SinkBusyError

T = TypeVar("T")
RETRY_SECONDS = 1.0  # how often a waiter tries the file again
FRESH_SECONDS = 3 * RETRY_SECONDS  # a request not renewed for this long was abandoned


def while_busy(action: Callable[[], T], seconds: float, requests: Iterable[Path | None],
               waiting: Callable[[SinkBusyError], None] | None = None,
               closing: threading.Event | None = None) -> T:
    """``action()``, tried again every ``RETRY_SECONDS`` while it raises ``SinkBusyError``, for up to ``seconds``
    (or until ``closing`` is set), asking for the files through their ``requests``; ``waiting`` hears the first
    refusal. The last refusal is raised."""
    paths = [path for path in requests if path is not None]
    deadline = time.monotonic() + seconds
    asked = False
    try:
        while True:
            try:
                return action()
            except SinkBusyError as exc:
                left = deadline - time.monotonic()
                if left <= 0 or (closing is not None and closing.is_set()):
                    raise
                if not asked and waiting is not None:
                    waiting(exc)
                asked = True
                for path in paths:
                    _touch(path)
                pause = min(RETRY_SECONDS, left)
                closing.wait(pause) if closing is not None else time.sleep(pause)
    finally:
        if asked:
            for path in paths:
                path.unlink(missing_ok=True)


def requested(requests: Iterable[Path | None]) -> bool:
    """Whether a process asks for one of the files now (a request renewed within ``FRESH_SECONDS``)."""
    now = time.time()
    for path in requests:
        try:
            if path is not None and now - path.stat().st_mtime < FRESH_SECONDS:
                return True
        except FileNotFoundError:
            continue
    return False


def wait_unrequested(requests: Iterable[Path | None], closing: threading.Event) -> None:
    """Wait, after handing files over, until nobody asks for them any more (or ``closing`` is set)."""
    paths = list(requests)
    while requested(paths) and not closing.wait(0.1):
        pass


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):  # a folder we cannot write: nobody is asked, the wait runs its course
        path.touch()
