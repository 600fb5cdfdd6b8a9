"""SIGKILL in the middle of an archive backfill of trades, then ``--resume``: every trade of the window once
(no trade_id twice, none missing), equal to the REST oracle."""

from __future__ import annotations

import signal

import duckdb
import pytest
from archive_support import MONTHS, PIPELINE

from etl.testing import run_subprocess
from etl.timeframes import DAY, from_ms

START = MONTHS[1]
END = START + 3 * DAY
SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize("crash_at", ["sink_commit:3", "checkpoint_write:2", "after_batch:5"])
def test_resume_after_sigkill_lands_every_trade_once(project, vision, rest, crash_at):
    vision.delay = 0.05
    archive = project(dataset="trades", timeframes=None, symbols=list(SYMBOLS), downloads=2,
                      pipeline_keys={"batch_rows": 5000, "commit_rows": 5000})
    args = ("backfill", str(archive.path), "--pipeline", PIPELINE, "--start", from_ms(START).isoformat(),
            "--end", from_ms(END).isoformat())
    killed = run_subprocess(*args, env={"ETL_CRASH_AT": crash_at})
    assert killed.exit_code == -signal.SIGKILL, killed

    resumed = run_subprocess("backfill", str(archive.path), "--resume")
    assert resumed.exit_code == 0, resumed
    for symbol in SYMBOLS:
        assert archive.trades(symbol) == rest.expected_trades(symbol, START, END)
    with duckdb.connect(str(archive.folder / "market.duckdb"), read_only=True) as connection:
        [(rows, ids)] = connection.execute("SELECT count(*), count(DISTINCT (symbol, trade_id)) FROM trades").fetchall()
    assert rows == ids == 2 * 3 * 3 * DAY // 10_000
    assert run_subprocess("backfill", str(archive.path), "--resume").stdout == "No unfinished backfills.\n"
