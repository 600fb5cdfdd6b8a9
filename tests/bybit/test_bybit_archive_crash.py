"""SIGKILL in the middle of a ``bybit_archive`` backfill, then ``--resume``: exactly the archive's trades, none
twice (a checkpoint falls between trades of one millisecond), and no file downloaded twice: the files the
killed run read whole are in the cache, and the days before the checkpoint are not read again at all."""

from __future__ import annotations

import signal

import pytest
from bybit_support import ARCHIVE_FIRST, make_project

from etl.testing import run_subprocess
from etl.timeframes import DAY

SYMBOLS = ("BTCUSDT", "BTCUSD")
START, END = ARCHIVE_FIRST, ARCHIVE_FIRST + 5 * DAY


@pytest.mark.parametrize("crash_at", ["sink_commit:3", "checkpoint_write:7", "after_batch:9"])
def test_resume_after_sigkill_lands_exactly_the_archive_trades(tmp_path, public, crash_at):
    public.delay = 0.05  # downloads still running when the process dies
    source = {"plugin": "bybit_archive", "dataset": "trades", "symbols": list(SYMBOLS), "base_url": public.url,
              "cache_dir": str(tmp_path / "cache"), "downloads": 2}
    archive = make_project(tmp_path / "project", source, batch_rows=70, commit_rows=70)

    killed = run_subprocess(*archive.args(START, END), env={"ETL_CRASH_AT": crash_at})
    assert killed.exit_code == -signal.SIGKILL, killed

    resumed = run_subprocess("backfill", str(archive.path), "--resume")
    assert resumed.exit_code == 0, resumed
    for symbol in SYMBOLS:
        assert archive.rows("trades", symbol, ("ts", "trade_id", "price", "size", "side")) == \
            public.expected_trades(symbol, START, END)
    assert archive.count("trades") == 2 * 5 * public.trades_per_day, "no trade twice"
    assert set(public.downloads.values()) == {1}, "files the killed run read come from the cache"
    assert run_subprocess("backfill", str(archive.path), "--resume").stdout == "No unfinished backfills.\n"
