import sqlite3

from tests.ops.helpers import hourly, write_hours


def test_a_chunked_backfill_reports_each_stream_once(write_pipeline, etl_cli, tmp_path):
    """Five chunks of one stream are one stream of 24 rows in the summary and the ledger, not five of 24."""
    path = write_pipeline(hourly(keys="chunk = 5"))
    write_hours(tmp_path / "AAA.csv", list(range(24)))
    result = etl_cli("backfill", str(path), "-p", "g", "--start", "2024-01-01", "--end", "2024-01-02")
    assert result.summary.startswith("etl backfill ok: 1 streams, 24 rows, ")
    with sqlite3.connect(tmp_path / ".etl" / "ledger.db") as db:
        assert db.execute("select stream, rows from stream_runs").fetchall() == [("ohlcv/AAA/1h", 24)]
