"""Trades that share a millisecond are never lost: a trades stream checkpoints at its last millisecond with
the trade ids committed there, so trades of that millisecond that arrive later are read, the others skipped.

A checkpoint of ``last ts + 1 ms`` lost them: a file that grows (or a page that ends) between two trades of
one millisecond left the later ones before the next run's window.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

from etl.testing import run_cli, run_subprocess, single_pipeline, write_pipeline

BASE = 1_704_067_200_000  # 2024-01-01


def trades(count: int) -> pl.DataFrame:
    """``count`` trades, four per millisecond, ids ascending."""
    return pl.DataFrame({
        "ts": [BASE + index // 4 for index in range(count)],
        "trade_id": [str(1_000 + index) for index in range(count)],
        "price": [42_000.0 + index for index in range(count)],
        "size": [0.001 * (index + 1) for index in range(count)],
        "side": ["buy" if index % 3 else "sell" for index in range(count)],
    })


def pipeline(folder: Path, **keys: object) -> Path:
    source = {"plugin": "files", "dataset": "trades", "path": "trades.csv", "symbols": ["BTCUSDT"],
              "start": "2024-01-01", "batch_rows": 5}
    sinks = [{"plugin": "duckdb", "path": "trades.duckdb"}, {"plugin": "sqlite", "path": "trades.db"}]
    return write_pipeline(folder, single_pipeline(source, sinks, name="t", **keys))


def stored(folder: Path) -> list[tuple[str, int]]:
    with duckdb.connect(str(folder / "trades.duckdb"), read_only=True) as connection:
        return connection.execute("SELECT trade_id, epoch_ms(ts) FROM trades ORDER BY trade_id").fetchall()


def expected(frame: pl.DataFrame) -> list[tuple[str, int]]:
    return sorted(zip(frame["trade_id"], frame["ts"], strict=True))


def test_a_trades_file_cut_inside_a_millisecond_loses_nothing(tmp_path: Path) -> None:
    everything = trades(22)
    path = pipeline(tmp_path)
    for cut in (6, 7, 13, 22):  # 6 and 7 end inside the millisecond of trades 4-7; 13 inside 12-15
        everything.head(cut).write_csv(tmp_path / "trades.csv")
        result = run_cli("run", str(path))
        assert result.exit_code == 0, str(result)
        assert stored(tmp_path) == expected(everything.head(cut))
    checkpoint = json.loads((tmp_path / ".etl" / "checkpoints" / "t.json").read_text())["streams"]["trades/BTCUSDT"]
    assert checkpoint["next_ms"] == BASE + 5
    assert checkpoint["committed_at_next"] == [["1020"], ["1021"]]

    quiet = run_cli("run", str(path))
    assert quiet.exit_code == 0 and "0 rows" in quiet.summary, "nothing committed is delivered twice"


def test_pages_ending_inside_a_millisecond_and_a_kill_between_them_lose_nothing(tmp_path: Path) -> None:
    """Source pages and batches of 5 split every group of 4 trades; the run is killed after its second
    commit, and the next run continues from the middle of a millisecond."""
    everything = trades(30)
    everything.write_csv(tmp_path / "trades.csv")
    path = pipeline(tmp_path, batch_rows=5, commit_rows=5)

    killed = run_subprocess("run", str(path), env={"ETL_CRASH_AT": "after_batch:2"})
    assert killed.exit_code == -9, str(killed)
    checkpoint = json.loads((tmp_path / ".etl" / "checkpoints" / "t.json").read_text())["streams"]["trades/BTCUSDT"]
    assert checkpoint["next_ms"] == BASE + 2 and checkpoint["committed_at_next"] == [["1008"], ["1009"]]

    result = run_cli("run", str(path))
    assert result.exit_code == 0, str(result)
    assert stored(tmp_path) == expected(everything)
    with duckdb.connect(str(tmp_path / "trades.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT count(*), count(DISTINCT trade_id) FROM trades").fetchone() == (30, 30)
