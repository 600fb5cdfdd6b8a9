"""The run ledger: plain sqlite3, readable by ``etl status``, compatible with ledgers written before."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import sqlite_utils

from etl.base import Stream
from etl.gaps import Gap
from etl.ledger import Ledger
from etl.report import StreamResult


def test_ledger_records_runs_streams_and_gaps(tmp_path):
    ledger = Ledger(tmp_path)
    run_id = ledger.start_run("run", "btc")
    stream = Stream("ohlcv", "BTCUSDT", "1h")
    result = StreamResult("btc", stream, rows=24, gaps=[Gap(3_600_000, 10_800_000, 2)], counters={"gaps": 1})
    ledger.record_gaps(run_id, "btc", "binance", stream.label, result.gaps)
    ledger.record_streams(run_id, [result])
    ledger.finish_run(run_id, "ok", [result], 1.5)
    assert ledger.last_stream_runs("btc")["ohlcv/BTCUSDT/1h"]["rows"] == 24
    assert ledger.gaps("btc") == [{"stream": "ohlcv/BTCUSDT/1h", "start": "1970-01-01T01:00:00Z",
                                   "end": "1970-01-01T03:00:00Z", "bars": 2}]
    ledger.close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert db.execute("select command, status, streams, rows, duration_s from runs").fetchall() == [
            ("run", "ok", 1, 24, 1.5)
        ]


def test_gaps_of_a_stream_come_from_every_pipeline_that_captured_it_under_that_source(tmp_path):
    ledger = Ledger(tmp_path)
    label = "liquidations/BTCUSDT"
    ledger.record_gaps(ledger.start_run("stream", "live"), "live", "binance", label, [Gap(5_000, 9_000, 0)])
    ledger.record_gaps(ledger.start_run("stream", "other"), "other", "binance", label,
                       [Gap(1_000, 2_000, 0), Gap(5_000, 9_000, 0)])
    ledger.record_gaps(ledger.start_run("stream", "bybit"), "bybit", "bybit", label, [Gap(3_000, 4_000, 0)])
    assert ledger.gaps_of(label, "binance") == [(1_000, 2_000), (5_000, 9_000)]
    assert ledger.gaps_of(label, "okx") == []
    ledger.close()


def test_a_ledger_whose_gaps_have_no_source_gains_the_column_and_keeps_its_gaps(tmp_path):
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute('create table gaps (run_id text, pipeline text, stream text, start text, "end" text, bars integer)')
        db.execute("insert into gaps values ('old', 'btc', 'ohlcv/BTCUSDT/1h', '1970-01-01T01:00:00Z', "
                   "'1970-01-01T03:00:00Z', 2)")
    db.close()
    ledger = Ledger(tmp_path)
    assert ledger.gaps("btc") == [{"stream": "ohlcv/BTCUSDT/1h", "start": "1970-01-01T01:00:00Z",
                                   "end": "1970-01-01T03:00:00Z", "bars": 2}]
    ledger.record_gaps("new", "btc", "binance", "ohlcv/BTCUSDT/1h", [Gap(0, 3_600_000, 1)])
    assert ledger.gaps_of("ohlcv/BTCUSDT/1h", "binance") == [(0, 3_600_000)]
    ledger.close()


def test_a_ledger_written_by_sqlite_utils_stays_readable(tmp_path):
    """Ledgers created before the switch to plain sqlite3 (by sqlite-utils) are read and appended to."""
    old = sqlite_utils.Database(tmp_path / "ledger.db")
    old["runs"].create({"id": str, "command": str, "pipeline": str, "started": str, "finished": str,
                        "status": str, "streams": int, "rows": int, "failed": int, "quarantined": int,
                        "duration_s": float}, pk="id")
    old["stream_runs"].create({"run_id": str, "pipeline": str, "stream": str, "window_start": str,
                               "window_end": str, "rows": int, "counters": str, "duration_s": float,
                               "finished": str, "status": str, "error": str})
    old["stream_runs"].insert({"run_id": "old", "pipeline": "btc", "stream": "ohlcv/BTCUSDT/1h", "rows": 7,
                               "status": "ok"})
    old.conn.close()
    ledger = Ledger(tmp_path)
    assert ledger.last_stream_runs("btc")["ohlcv/BTCUSDT/1h"]["rows"] == 7
    ledger.start_run("run", "btc")
    assert ledger.gaps("btc") == []
    ledger.close()


def test_importing_the_ledger_leaves_sys_modules_alone():
    code = ("import sys; before = set(sys.modules); import etl.ledger; "
            "print(sorted(n for n in set(sys.modules) - before if sys.modules[n] is None))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
