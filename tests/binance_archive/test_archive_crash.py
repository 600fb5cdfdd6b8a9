"""SIGKILL in the middle of an archive backfill, then ``--resume``: the same rows as the REST oracle, and no
archive file downloaded twice (the cache holds what the killed run verified)."""

from __future__ import annotations

import pytest
from archive_support import MONTHS

from etl.testing import run_subprocess
from etl.timeframes import next_bar

END = next_bar(MONTHS[-1], "1M")
SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize("crash_at", ["sink_commit:2", "checkpoint_write:5", "after_batch:3"])
def test_resume_after_sigkill_lands_exactly_the_oracle_rows(project, vision, rest, crash_at):
    vision.delay = 0.05  # downloads still running when the process dies
    archive = project(symbols=list(SYMBOLS), downloads=2,
                      pipeline_keys={"batch_rows": 400, "commit_rows": 400})
    archive.killed_then_resumed(MONTHS[0], END, crash_at)
    for symbol in SYMBOLS:
        assert archive.rows(symbol) == rest.expected_klines(symbol, "1h", MONTHS[0], END)
    assert set(vision.downloads.values()) == {1}, "files the killed run verified come from the cache"
    assert run_subprocess("backfill", str(archive.path), "--resume").stdout == "No unfinished backfills.\n"
