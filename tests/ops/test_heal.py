"""``etl heal`` fetches recorded gaps again: late bars are stored, bars the venue never has are confirmed."""

import json

import duckdb
import pytest

from etl.lock import PipelineLock
from tests.ops.helpers import hourly, write_hours

HOURS = [0, 1, 2, 5, 6, 9, 10]  # gaps: 03:00-05:00 (2 bars) and 07:00-09:00 (2 bars)


@pytest.fixture
def gappy(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly())
    write_hours(tmp_path / "AAA.csv", HOURS)
    assert etl_cli("run", str(path)).summary.endswith(", gaps: 2, missing bars: 4")
    return path


def stored_hours(tmp_path):
    with duckdb.connect(str(tmp_path / "g.duckdb"), read_only=True) as con:
        return [hour for (hour,) in con.execute("select hour(ts) from ohlcv order by ts").fetchall()]


def checkpoint(tmp_path):
    return json.loads((tmp_path / ".etl" / "checkpoints" / "g.json").read_text())["streams"]["ohlcv/AAA/1h"]["next"]


def test_heal_fills_late_bars_and_confirms_missing_ones(gappy, etl_cli, tmp_path):
    write_hours(tmp_path / "AAA.csv", [0, 1, 2, 3, 4, 5, 6, 7, 9, 10])  # 03, 04 and 07 arrived late; 08 never will
    healed = etl_cli("heal", str(gappy))
    assert healed.exit_code == 0
    assert healed.summary.startswith("etl heal ok: 1 streams, 5 rows, 0 quarantined, 0 failed, ")
    assert healed.summary.endswith(", gaps: 1, gaps filled: 2, missing bars: 1")
    assert stored_hours(tmp_path) == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10]
    assert checkpoint(tmp_path) == "2024-01-01T11:00:00Z", "the pipeline's checkpoint did not move"
    assert etl_cli("status", str(gappy), "--gaps").stdout.splitlines() == [
        "pipeline  stream        from                  to                    missing bars",
        "g         ohlcv/AAA/1h  2024-01-01T08:00:00Z  2024-01-01T09:00:00Z  1",
    ]

    again = etl_cli("heal", str(gappy))
    assert again.summary.endswith(", gaps: 1, gaps confirmed: 1, missing bars: 1")
    listed = etl_cli("status", str(gappy), "--gaps").stdout.splitlines()
    assert listed[:4] == [
        "no open gaps",
        "",
        "confirmed (the venue has no rows there):",
        "pipeline  stream        from                  to                    missing bars  confirmed",
    ]
    assert listed[4].split()[:5] == ["g", "ohlcv/AAA/1h", "2024-01-01T08:00:00Z", "2024-01-01T09:00:00Z", "1"]
    assert len(listed) == 5
    status = etl_cli("status", str(gappy)).stdout.splitlines()[1].split()
    assert status[4:6] == ["0", "0"], "no open gap, no missing bar to fetch"

    assert etl_cli("heal", str(gappy)).stdout == "No open gaps.\n", "a confirmed gap is not fetched again"
    assert stored_hours(tmp_path) == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10]
    assert checkpoint(tmp_path) == "2024-01-01T11:00:00Z"
    assert not list((tmp_path / ".etl" / "heals").iterdir()), "a heal's own checkpoint file is removed"


def test_since_heals_only_the_later_gaps(gappy, etl_cli, tmp_path):
    write_hours(tmp_path / "AAA.csv", list(range(11)))
    assert etl_cli("heal", str(gappy), "--since", "2024-01-01T06:00").summary.endswith(", gaps filled: 1")
    assert stored_hours(tmp_path) == [0, 1, 2, 5, 6, 7, 8, 9, 10]
    assert [line.split()[2] for line in etl_cli("status", str(gappy), "--gaps").stdout.splitlines()[1:]] == [
        "2024-01-01T03:00:00Z"
    ]


def test_a_stream_that_fails_keeps_its_gaps_open(gappy, etl_cli, tmp_path):
    (tmp_path / "AAA.csv").write_text("timestamp,open\nnot a time,1\n")
    healed = etl_cli("heal", str(gappy))
    assert healed.exit_code == 1
    assert healed.stdout.startswith("FAILED g ohlcv/AAA/1h: ")
    assert len(etl_cli("status", str(gappy), "--gaps").stdout.splitlines()) == 3, "both gaps still open"


def test_heal_waits_for_no_lock(gappy, etl_cli, tmp_path):
    with PipelineLock(tmp_path / ".etl", "g"):
        healed = etl_cli("heal", str(gappy))
    assert healed.exit_code == 75
    assert "LOCKED g: " in healed.stderr
    assert len(etl_cli("status", str(gappy), "--gaps").stdout.splitlines()) == 3


def test_since_must_be_a_time(gappy, etl_cli):
    healed = etl_cli("heal", str(gappy), "--since", "soon")
    assert healed.exit_code == 2
    assert "'soon' is not an ISO date or datetime" in healed.stderr
