"""``etl.handoff``: waiting for a sink file another process holds, and asking for it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from etl import handoff
from etl.errors import SinkBusyError


def test_a_waiter_asks_while_it_waits_and_stops_asking_once_it_has_the_file(tmp_path: Path) -> None:
    request = tmp_path / "market.duckdb.wanted"
    seen = []

    def action() -> str:
        seen.append(handoff.requested([request]))
        if len(seen) < 2:
            raise SinkBusyError("held")
        return "opened"

    assert handoff.while_busy(action, 5, [request, None]) == "opened"
    assert seen == [False, True]
    assert not request.exists()


def test_a_waiter_gives_up_after_its_wait_with_the_last_refusal(tmp_path: Path) -> None:
    request = tmp_path / "market.duckdb.wanted"
    refusals = []

    def refuse() -> None:
        raise SinkBusyError(f"held ({len(refusals)})")

    with pytest.raises(SinkBusyError):
        handoff.while_busy(refuse, 0.2, [request], refusals.append)
    assert len(refusals) == 1 and not request.exists()


def test_closing_ends_a_wait_at_once(tmp_path: Path) -> None:
    closing = threading.Event()
    closing.set()
    began = time.monotonic()
    with pytest.raises(SinkBusyError):
        handoff.while_busy(lambda: (_ for _ in ()).throw(SinkBusyError("held")), 60, [], closing=closing)
    assert time.monotonic() - began < 1


def test_an_abandoned_request_is_no_request(tmp_path: Path) -> None:
    """A waiter that died leaves its request behind: past ``FRESH_SECONDS`` the holder takes no notice."""
    request = tmp_path / "market.duckdb.wanted"
    request.touch()
    assert handoff.requested([request])
    old = time.time() - handoff.FRESH_SECONDS - 1
    os.utime(request, (old, old))
    assert not handoff.requested([request, None])
    handoff.wait_unrequested([request], threading.Event())  # returns at once
