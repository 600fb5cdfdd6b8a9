"""A progress bar for long runs on a terminal (time covered, rows, streams, ETA); silent under cron.

The total is the time the streams' windows span; committed batches cover it up to their checkpoint, and a
stream whose source ran out of data covers the rest of its window at once (the runner says so).
"""

from __future__ import annotations

import threading
from typing import Any


class Progress:
    def __init__(self, enabled: bool, label: str, total: int, streams: int):
        self.enabled = enabled and total > 0
        self.label = label
        self.total = total
        self.streams = streams
        self.rows = 0
        self._lock = threading.Lock()
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            import click

            self._bar = click.progressbar(
                length=self.total,
                label=self.label,
                show_eta=True,
                show_percent=True,
                file=click.get_text_stream("stderr"),
                item_show_func=lambda _: f"{self.rows:,} rows, {self.streams} streams",
            )
            self._bar.__enter__()
        return self

    def advance(self, span: int, rows: int) -> None:
        with self._lock:
            self.rows += rows
            if self._bar is not None and span > 0:
                self._bar.update(span, current_item=self.rows)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None
