"""Deterministic crash points for the crash-safety tests.

``ETL_CRASH_AT=name:n`` makes the process SIGKILL itself the n-th time it passes point ``name``
(``sink_commit``, ``between_sinks``, ``checkpoint_write``, ``after_batch``, and ``worker_batch`` on a Dask
worker). Unset, a point is one dict lookup.
"""

from __future__ import annotations

import os
import signal
import threading

_counts: dict[str, int] = {}
_lock = threading.Lock()


def point(name: str) -> None:
    setting = os.environ.get("ETL_CRASH_AT")
    if not setting:
        return
    wanted, _, nth = setting.partition(":")
    if wanted != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        if _counts[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
