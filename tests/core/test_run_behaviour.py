"""Run semantics seen from the CLI: per-stream failures, status, logs, backfill records, warm-up windows."""

from __future__ import annotations

import json
import sqlite3

import duckdb

PIPELINE = """
    [pipelines.synth.source]
    plugin = "synthetic"
    symbols = ["AAA", "BAD", "CCC"]
    timeframes = ["1h"]
    start = "2024-01-01"
    end = "2024-01-02"
    fail = ["BAD"]

    [[pipelines.synth.sinks]]
    plugin = "duckdb"
    path = "synth.duckdb"
"""


def test_one_bad_symbol_fails_only_its_stream(use_plugins, write_pipeline, etl_cli, tmp_path):
    use_plugins("etl-synthetic")
    result = etl_cli("run", str(write_pipeline(PIPELINE)))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "FAILED synth ohlcv/BAD/1h: synthetic: unknown symbol 'BAD'"
    assert lines[-1].startswith("etl run failed: 3 streams, 48 rows, 0 quarantined, 1 failed")
    with duckdb.connect(str(tmp_path / "synth.duckdb"), read_only=True) as con:
        assert con.execute("select symbol, count(*) from ohlcv group by 1 order by 1").fetchall() == [
            ("AAA", 24), ("CCC", 24)
        ]
    logged = [json.loads(line) for line in result.stderr.splitlines()]
    failure = next(event for event in logged if event["event"] == "stream failed")
    assert failure["stream"] == "ohlcv/BAD/1h" and failure["level"] == "error"


def test_status_shows_checkpoint_and_last_result(use_plugins, write_pipeline, etl_cli):
    use_plugins("etl-synthetic")
    path = write_pipeline(PIPELINE)
    before = etl_cli("status", str(path))
    assert before.stdout.splitlines()[0].split() == [
        "pipeline", "stream", "checkpoint", "lag", "gaps", "missing", "bars", "last", "run", "rows", "result"
    ]
    assert [line.split()[:6] for line in before.stdout.splitlines()[1:]] == [
        ["synth", "ohlcv/AAA/1h", "-", "0", "0", "never"],
        ["synth", "ohlcv/BAD/1h", "-", "0", "0", "never"],
        ["synth", "ohlcv/CCC/1h", "-", "0", "0", "never"],
    ]
    etl_cli("run", str(path))
    rows = {line.split()[1]: line for line in etl_cli("status", str(path)).stdout.splitlines()[1:]}
    assert rows["ohlcv/AAA/1h"].split()[2] == "2024-01-02T00:00:00Z"
    assert rows["ohlcv/AAA/1h"].split()[-2:] == ["24", "ok"]
    assert rows["ohlcv/BAD/1h"].split()[2] == "-"
    assert rows["ohlcv/BAD/1h"].endswith("failed: synthetic: unknown symbol 'BAD'")


def test_run_ledger_has_one_row_per_run_and_per_stream(use_plugins, write_pipeline, etl_cli, tmp_path):
    use_plugins("etl-synthetic")
    path = write_pipeline(PIPELINE)
    etl_cli("run", str(path))
    etl_cli("run", str(path))
    db = sqlite3.connect(tmp_path / ".etl" / "ledger.db")
    runs = db.execute("select command, pipeline, status, streams, rows, failed from runs order by started").fetchall()
    assert runs == [("run", "synth", "failed", 3, 48, 1), ("run", "synth", "failed", 3, 0, 1)]
    streams = db.execute(
        "select stream, window_start, window_end, rows, status from stream_runs where stream = 'ohlcv/AAA/1h'"
    ).fetchall()
    assert streams == [
        ("ohlcv/AAA/1h", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", 24, "ok"),
        ("ohlcv/AAA/1h", "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z", 0, "skipped"),
    ]


def test_quiet_run_prints_nothing_on_success(use_plugins, write_pipeline, etl_cli):
    use_plugins("etl-synthetic")
    path = write_pipeline(PIPELINE.replace('"BAD", ', ""))
    result = etl_cli("-q", "run", str(path))
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""


def test_backfill_requires_pipeline_and_start(use_plugins, write_pipeline, etl_cli):
    use_plugins("etl-synthetic")
    path = write_pipeline(PIPELINE)
    result = etl_cli("backfill", str(path), "--pipeline", "synth")
    assert result.exit_code == 2
    assert "backfill needs --pipeline and --start (or --resume)" in result.stderr
    bad = etl_cli("backfill", str(path), "--pipeline", "synth", "--start", "yesterday")
    assert bad.exit_code == 2 and "'yesterday' is not an ISO date or datetime" in bad.stderr


def test_backfill_fills_a_range_outside_the_incremental_checkpoint(use_plugins, write_pipeline, etl_cli, tmp_path):
    use_plugins("etl-synthetic")
    path = write_pipeline(PIPELINE.replace('"BAD", ', ""))
    etl_cli("run", str(path))
    result = etl_cli("backfill", str(path), "--pipeline", "synth", "--start", "2023-12-31", "--end", "2024-01-01")
    assert result.exit_code == 0, result.output
    assert "2 streams, 48 rows" in result.stdout
    with duckdb.connect(str(tmp_path / "synth.duckdb"), read_only=True) as con:
        assert con.execute("select count(*), min(ts)::varchar from ohlcv").fetchall() == [
            (96, "2023-12-31 00:00:00+00")
        ]
    checkpoint = json.loads((tmp_path / ".etl" / "checkpoints" / "synth.json").read_text())
    assert checkpoint["streams"]["ohlcv/AAA/1h"]["next"] == "2024-01-02T00:00:00Z"


def test_dry_run_fetches_and_writes_nothing(use_plugins, write_pipeline, etl_cli, tmp_path):
    use_plugins("etl-synthetic")
    path = write_pipeline(PIPELINE)
    result = etl_cli("backfill", str(path), "--pipeline", "synth", "--start", "2023-01-01", "--end", "2023-02-01",
                     "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"ohlcv/{symbol}/1h: 2023-01-01T00:00:00Z .. 2023-02-01T00:00:00Z" for symbol in ("AAA", "BAD", "CCC")
    ]
    assert not (tmp_path / "synth.duckdb").exists()


GAPPY = """
    [pipelines.g.source]
    plugin = "files"
    path = "{symbol}.csv"
    columns = { ts = "timestamp" }
    symbols = ["AAA"]
    timeframes = ["1h"]

    [[pipelines.g.sinks]]
    plugin = "duckdb"
    path = "g.duckdb"
"""


def write_hours(path, hours):
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"2024-01-01T{hour:02d}:00:00Z,1,2,0.5,1.5,10" for hour in hours]
    path.write_text("\n".join(lines) + "\n")


def test_gaps_are_recorded_per_stream_and_listed_by_status(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(GAPPY)
    write_hours(tmp_path / "AAA.csv", [0, 1, 2])
    etl_cli("run", str(path))
    assert etl_cli("status", str(path), "--gaps").stdout == "no missing bars\n"
    write_hours(tmp_path / "AAA.csv", [0, 1, 2, 5, 6, 7, 8])
    result = etl_cli("run", str(path))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].endswith(", gaps: 1, missing bars: 2")
    write_hours(tmp_path / "AAA.csv", [0, 1, 2, 5, 6, 7, 8, 10, 11])
    assert etl_cli("run", str(path)).stdout.splitlines()[-1].endswith(", gaps: 1, missing bars: 1")

    status = etl_cli("status", str(path)).stdout.splitlines()[1].split()
    assert status[1:6] == ["ohlcv/AAA/1h", "2024-01-01T12:00:00Z", status[3], "2", "3"]
    listed = etl_cli("status", str(path), "--gaps").stdout.splitlines()
    assert listed[0].split() == ["pipeline", "stream", "from", "to", "missing", "bars"]
    assert [line.split() for line in listed[1:]] == [
        ["g", "ohlcv/AAA/1h", "2024-01-01T03:00:00Z", "2024-01-01T05:00:00Z", "2"],
        ["g", "ohlcv/AAA/1h", "2024-01-01T09:00:00Z", "2024-01-01T10:00:00Z", "1"],
    ]
    with duckdb.connect(str(tmp_path / "g.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from ohlcv").fetchall() == [(9,)]


def test_repeated_keys_never_reach_a_sink_and_are_counted(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(GAPPY)
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"2024-01-01T{hour:02d}:00:00Z,1,2,0.5,1.5,{hour}" for hour in (0, 1, 1, 2)]
    (tmp_path / "AAA.csv").write_text("\n".join(lines) + "\n")
    result = etl_cli("run", str(path))
    assert result.stdout.splitlines()[-1].endswith(", duplicates dropped: 1")
    with duckdb.connect(str(tmp_path / "g.duckdb"), read_only=True) as con:
        rows = con.execute("select hour(ts), volume from ohlcv order by ts").fetchall()
    assert rows == [(0, 0.0), (1, 1.0), (2, 2.0)]


def write_venues(path, venues):
    lines = ["timestamp,open,high,low,close,volume,venue"]
    lines += [f"2024-01-01T{hour:02d}:00:00Z,1,2,0.5,1.5,10,{venue}" for hour, venue in enumerate(venues)]
    path.write_text("\n".join(lines) + "\n")


def test_a_batch_a_sink_refuses_fails_only_its_stream_inside_a_grouped_commit(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(GAPPY.replace('symbols = ["AAA"]', 'symbols = ["AAA", "BBB"]'))
    write_venues(tmp_path / "AAA.csv", [1, 2])
    write_venues(tmp_path / "BBB.csv", [1, 2])
    assert etl_cli("run", str(path)).exit_code == 0
    write_venues(tmp_path / "AAA.csv", [1, 2, 3, 4])
    write_venues(tmp_path / "BBB.csv", [1, 2, "x3", "x4"])

    result = etl_cli("run", str(path))
    assert result.exit_code == 1, result.output
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == ["FAILED g ohlcv/BBB/1h: duckdb table 'ohlcv' column 'venue' is BIGINT but the batch has VARCHAR"]
    with duckdb.connect(str(tmp_path / "g.duckdb"), read_only=True) as con:
        rows = con.execute("select symbol, count(*), sum(venue) from ohlcv group by 1 order by 1").fetchall()
    assert rows == [("AAA", 4, 10), ("BBB", 2, 3)]


def test_rows_dated_in_the_future_are_dropped_and_counted(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(GAPPY)
    lines = ["timestamp,open,high,low,close,volume", "2024-01-01T00:00:00Z,1,2,0.5,1.5,1",
             "2999-01-01T00:00:00Z,1,2,0.5,1.5,1"]
    (tmp_path / "AAA.csv").write_text("\n".join(lines) + "\n")
    result = etl_cli("run", str(path))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].endswith(", future rows dropped: 1")
    with duckdb.connect(str(tmp_path / "g.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from ohlcv").fetchall() == [(1,)]


def test_commit_mb_bounds_the_rows_of_one_commit(write_pipeline, tmp_path):
    """A commit stops gathering batches at commit_mb even far below commit_rows (killed after the first commit)."""
    import polars as pl

    from etl.testing.pipelines import run_subprocess

    minutes = 30_000
    for symbol in ("AAA", "BBB", "CCC"):
        pl.DataFrame({
            "timestamp": pl.int_range(minutes, eager=True) * 60_000 + 1_704_067_200_000,
            "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0,
        }).write_parquet(tmp_path / f"{symbol}.parquet")
    path = write_pipeline("""
        [pipelines.wide]
        batch_rows = 5000
        commit_rows = 1000000
        commit_mb = 1

        [pipelines.wide.source]
        plugin = "files"
        path = "{symbol}.parquet"
        symbols = ["AAA", "BBB", "CCC"]
        timeframes = ["1m"]
        start = "2024-01-01"
        columns = { ts = "timestamp" }
        batch_rows = 5000

        [[pipelines.wide.sinks]]
        plugin = "duckdb"
        path = "wide.duckdb"
    """)
    killed = run_subprocess("run", str(path), env={"ETL_CRASH_AT": "after_batch:1"})
    assert killed.exit_code == -9
    with duckdb.connect(str(tmp_path / "wide.duckdb"), read_only=True) as con:
        [(first_commit,)] = con.execute("select count(*) from ohlcv").fetchall()
    # A 5,000-row batch of these columns is about 0.25 MB: the commit closes once it holds 1 MB, after 4 or 5
    # batches; with commit_mb = 64 the first commit takes all 90,000 rows.
    assert 5_000 <= first_commit <= 30_000
    assert run_subprocess("run", str(path)).exit_code == 0
    with duckdb.connect(str(tmp_path / "wide.duckdb"), read_only=True) as con:
        assert con.execute("select count(*), count(distinct (symbol, ts)) from ohlcv").fetchall() == [
            (3 * minutes, 3 * minutes)]
