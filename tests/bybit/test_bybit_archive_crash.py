"""SIGKILL in the middle of a ``bybit_archive`` backfill, then ``--resume``: exactly the archive's trades, none
twice (each checkpoint holds the trade ids committed at its millisecond, which other trades share), no file the
killed run cached downloaded again, and the files of the days before each stream's checkpoint not even read
again from the cache (a day file arrives as one frame, so batches end at a day's last trade)."""

from __future__ import annotations

import json
import signal

import pytest
from bybit_support import ARCHIVE_FIRST, make_project

from etl.testing import run_subprocess
from etl.timeframes import DAY
from fixtures.fake_bybit_public import file_name

SYMBOLS = ("BTCUSDT", "BTCUSD")
START, END = ARCHIVE_FIRST, ARCHIVE_FIRST + 5 * DAY


@pytest.mark.parametrize(("crash_at", "days_done"), [("sink_commit:1", False), ("checkpoint_write:8", True),
                                                     ("after_batch:8", True)])
def test_resume_after_sigkill_lands_exactly_the_archive_trades(tmp_path, public, crash_at, days_done):
    public.delay = 0.05  # downloads still running when the process dies
    source = {"plugin": "bybit_archive", "dataset": "trades", "symbols": list(SYMBOLS), "base_url": public.url,
              "cache_dir": str(tmp_path / "cache"), "downloads": 2}
    archive = make_project(tmp_path / "project", source, batch_rows=70, commit_rows=70)

    killed = run_subprocess(*archive.args(START, END), env={"ETL_CRASH_AT": crash_at})
    assert killed.exit_code == -signal.SIGKILL, killed
    cache = tmp_path / "cache" / "bybit-public" / "trading"
    cached = {path.name: path.stat().st_mtime_ns for path in cache.rglob("*.csv.gz")}
    downloads = dict(public.downloads)
    [plan] = (archive.folder / ".etl" / "backfills").glob("*.json")
    checkpoints = json.loads(plan.read_text())["streams"]
    done = [file_name(symbol, day) for symbol in SYMBOLS for day in range(START, END, DAY)
            if day + DAY <= checkpoints.get(f"trades/{symbol}", {}).get("next_ms", START)]

    resumed = run_subprocess("backfill", str(archive.path), "--resume")

    assert resumed.exit_code == 0, resumed
    for symbol in SYMBOLS:
        assert archive.rows("trades", symbol, ("ts", "trade_id", "price", "size", "side")) == \
            public.expected_trades(symbol, START, END)
    assert archive.count("trades") == 2 * 5 * public.trades_per_day, "no trade twice"
    assert all(public.downloads[name] == downloads[name] for name in cached), "cached files are not downloaded"
    assert bool(done) == days_done
    assert all(next(cache.rglob(name)).stat().st_mtime_ns == cached[name] for name in done), "nor read again"
    assert run_subprocess("backfill", str(archive.path), "--resume").stdout == "No unfinished backfills.\n"
