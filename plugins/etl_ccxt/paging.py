"""Cutting a time range into pages that can neither overlap nor leave a hole."""

from __future__ import annotations

from collections.abc import Iterator


def windows(start: int, end: int, span: int) -> Iterator[tuple[int, int]]:
    """Consecutive ``[lo, hi)`` of at most ``span`` ms covering ``[start, end)``, oldest first.

    An endpoint asked for a window holding at most its page limit of rows returns all of them whatever
    its ordering rule (oldest or newest ``limit`` first), which makes these pages exact by construction.
    """
    lo = start
    while lo < end:
        hi = min(lo + span, end)
        yield lo, hi
        lo = hi
