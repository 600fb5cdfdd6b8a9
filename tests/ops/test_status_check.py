"""``etl status --check`` and ``--json``: a health check for cron and monitoring."""

import json
import re

from tests.ops.helpers import hourly, write_hours, write_recent_hours


def test_a_stale_stream_fails_the_check_until_a_run_catches_up(write_pipeline, etl_cli, tmp_path, frozen_clock):
    path = write_pipeline(hourly())
    assert etl_cli("status", str(path), "--check").stdout == "STALE g ohlcv/AAA/1h: no checkpoint: etl run has " \
                                                             "stored nothing yet\n"
    write_recent_hours(tmp_path / "AAA.csv", list(range(5, 10)))
    etl_cli("run", str(path))
    check = etl_cli("status", str(path), "--check")
    assert check.exit_code == 1
    assert check.stdout == "STALE g ohlcv/AAA/1h: 5.5h behind, max_lag 3.0h\n", "the clock stands at half past"

    write_recent_hours(tmp_path / "AAA.csv", list(range(10)))
    etl_cli("run", str(path))
    fresh = etl_cli("status", str(path), "--check")
    assert (fresh.exit_code, fresh.stdout) == (0, "ok: 1 streams fresh, none failed, no recent open gaps\n")


def test_max_lag_of_the_pipeline_overrides_settings(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly(keys='max_lag = "5000d"', settings='max_lag = "1s"'))
    write_hours(tmp_path / "AAA.csv", [0, 1, 2])
    etl_cli("run", str(path))
    assert etl_cli("status", str(path), "--check").exit_code == 0
    path = write_pipeline(hourly(settings='max_lag = "5000d"'))
    assert etl_cli("status", str(path), "--check").exit_code == 0
    path = write_pipeline(hourly(settings='max_lag = "2w"'))
    assert "max_lag 14.0d\n" in etl_cli("status", str(path), "--check").stdout


def test_a_failed_last_run_and_recent_open_gaps_are_problems(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly(keys='max_lag = "1d"'))
    write_recent_hours(tmp_path / "AAA.csv", [9, 8, 5, 4])  # 6 and 7 hours ago missing
    etl_cli("run", str(path))
    (tmp_path / "AAA.csv").write_text("timestamp,open\nnot a time,1\n")
    assert etl_cli("run", str(path)).exit_code == 1
    check = etl_cli("status", str(path), "--check")
    assert check.exit_code == 1
    failed, gaps = check.stdout.splitlines()
    assert failed.startswith("FAILED g ohlcv/AAA/1h: ")
    assert re.fullmatch(r"GAPS g ohlcv/AAA/1h: 1 open gaps \(2 missing bars\) since \S+Z", gaps)


def test_old_open_gaps_do_not_fail_the_check(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly(keys='max_lag = "5000d"'))
    write_hours(tmp_path / "AAA.csv", [0, 1, 5])
    etl_cli("run", str(path))
    assert etl_cli("status", str(path), "--check").exit_code == 0
    assert etl_cli("status", str(path), "--check").exit_code == 0
    path = write_pipeline(hourly(keys='max_lag = "5000d"', settings='recent_gaps = "5000d"'))
    assert etl_cli("status", str(path), "--check").stdout.startswith("GAPS g ohlcv/AAA/1h: 1 open gaps (3 missing")


def test_json_lists_every_stream_with_its_problems(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly())
    write_hours(tmp_path / "AAA.csv", [0, 1, 2, 5])
    etl_cli("run", str(path))
    shown = etl_cli("status", str(path), "--json")
    assert shown.exit_code == 0, "--json alone is not a check"
    (stream,) = json.loads(shown.stdout)
    assert stream["lag_s"] > 3 * 86400
    assert stream["last_run"]["finished"]
    stream.update(lag_s=None, last_run={**stream["last_run"], "finished": None})
    assert stream == {
        "pipeline": "g", "stream": "ohlcv/AAA/1h", "checkpoint": "2024-01-01T06:00:00Z", "lag_s": None,
        "max_lag_s": 10800, "last_run": {"status": "ok", "finished": None, "rows": 4, "error": None},
        "open_gaps": 1, "open_missing_bars": 2, "confirmed_gaps": 0,
        "problems": [{"cause": "stale", "message": stream["problems"][0]["message"]}],
    }
    assert etl_cli("status", str(path), "--json", "--check").exit_code == 1


def test_a_max_lag_that_is_no_duration_is_a_usage_error(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly(keys='max_lag = "soon"'))
    result = etl_cli("status", str(path), "--check")
    assert result.exit_code == 2
    assert result.stderr.endswith("Invalid pipelines.g.max_lag: 'soon' is not a duration such as 90s, 15m, 2h, "
                                  "1d or 1w\n")
    path = write_pipeline(hourly(settings='max_lag = 5'))
    assert "Key 'max_lag' in settings must be" in etl_cli("run", str(path)).stderr


def test_the_views_of_status_are_one_at_a_time(write_pipeline, etl_cli):
    result = etl_cli("status", str(write_pipeline(hourly())), "--gaps", "--check")
    assert result.exit_code == 2
    assert "--gaps, --stored, --units and --check/--json are separate views: give one" in result.stderr
