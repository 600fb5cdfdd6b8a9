"""Where each recorded gap stands: ``open`` (to be fetched again), ``confirmed`` (``etl heal`` asked again and the
venue still has no rows there: no trade in that minute, a maintenance window) or ``filled`` (``etl heal`` found
its bars; whatever was still missing inside was recorded as a gap of its own)."""

from __future__ import annotations

from typing import Any

from .gaps import Gap
from .ledger import Ledger
from .timeframes import parse_time


def gap_states(ledger: Ledger, pipeline: str) -> list[dict[str, Any]]:
    """Every gap of ``pipeline`` (as ``Ledger.gaps``) with its ``state`` and the date it was ``checked``."""
    outcomes = ledger.gap_outcomes(pipeline)
    rows = []
    for gap in ledger.gaps(pipeline):
        outcome = outcomes.get((gap["stream"], gap["start"], gap["end"]), {})
        rows.append({**gap, "state": outcome.get("outcome", "open"), "checked": outcome.get("checked")})
    return rows


def open_gaps(ledger: Ledger, pipeline: str, since: int | None = None) -> dict[str, list[Gap]]:
    """The open gaps of ``pipeline`` by stream label, those starting at ``since`` or later when given."""
    found: dict[str, list[Gap]] = {}
    for row in gap_states(ledger, pipeline):
        gap = Gap(parse_time(row["start"]), parse_time(row["end"]), row["bars"])
        if row["state"] == "open" and (since is None or gap.start >= since):
            found.setdefault(row["stream"], []).append(gap)
    return found
