"""SIGKILL in the middle of an archive backfill of trades, then ``--resume``: every trade of the window once
(no trade_id twice, none missing), equal to the REST oracle."""

from __future__ import annotations

import duckdb
import pytest
from archive_support import MONTHS

from etl.testing import run_subprocess
from etl.timeframes import DAY

START = MONTHS[1]
END = START + 3 * DAY
SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize("crash_at", ["sink_commit:3", "checkpoint_write:2", "after_batch:5"])
def test_resume_after_sigkill_lands_every_trade_once(project, vision, rest, crash_at):
    vision.delay = 0.05
    archive = project(dataset="trades", timeframes=None, symbols=list(SYMBOLS), downloads=2,
                      pipeline_keys={"batch_rows": 5000, "commit_rows": 5000})
    archive.killed_then_resumed(START, END, crash_at)
    for symbol in SYMBOLS:
        assert archive.trades(symbol) == rest.expected_trades(symbol, START, END)
    with duckdb.connect(str(archive.folder / "market.duckdb"), read_only=True) as connection:
        [(rows, ids)] = connection.execute("SELECT count(*), count(DISTINCT (symbol, trade_id)) FROM trades").fetchall()
    assert rows == ids == 2 * 3 * 3 * DAY // 10_000
    assert run_subprocess("backfill", str(archive.path), "--resume").stdout == "No unfinished backfills.\n"
