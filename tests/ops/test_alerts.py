"""Alerts: the command gets one alert per stream and cause until it recovers, each recorded in the ledger."""

import json
import sqlite3

from etl.lock import PipelineLock
from tests.ops.helpers import hourly, write_recent_hours


def alerting(tmp_path, min_level):
    command = f"cat >> {tmp_path / 'alerts.jsonl'} && echo >> {tmp_path / 'alerts.jsonl'} && " \
              f"echo $ETL_ALERT_LEVEL $ETL_ALERT_CAUSE $ETL_ALERT_STATE >> {tmp_path / 'alerts.env'}"
    return hourly(settings=f"alert = {{ command = {json.dumps(command)}, min_level = \"{min_level}\" }}")


def received(tmp_path):
    path = tmp_path / "alerts.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(alert["state"], alert["level"], alert["cause"], alert["stream"]) for alert in map(json.loads, lines)]


def break_file(tmp_path):
    (tmp_path / "AAA.csv").write_text("timestamp,open\nnot a time,1\n")


def test_one_alert_per_cause_until_it_recovers(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(alerting(tmp_path, "info"))
    break_file(tmp_path)
    assert etl_cli("run", str(path)).exit_code == 1
    raised = [("raised", "warning", "stale", "ohlcv/AAA/1h"), ("raised", "critical", "failed", "ohlcv/AAA/1h")]
    assert received(tmp_path) == raised
    assert (tmp_path / "alerts.env").read_text() == "warning stale raised\ncritical failed raised\n"
    assert etl_cli("run", str(path)).exit_code == 1
    assert received(tmp_path) == raised, "the same causes do not alert again"

    write_recent_hours(tmp_path / "AAA.csv", list(range(5)))
    assert etl_cli("run", str(path)).exit_code == 0
    recovered = [("recovered", "info", "stale", "ohlcv/AAA/1h"), ("recovered", "info", "failed", "ohlcv/AAA/1h")]
    assert received(tmp_path) == raised + recovered
    assert etl_cli("run", str(path)).exit_code == 0
    assert received(tmp_path) == raised + recovered

    with sqlite3.connect(tmp_path / ".etl" / "ledger.db") as db:
        rows = db.execute("select cause, level, recovered is not null, sent, command_exit from alerts").fetchall()
    assert rows == [("stale", "warning", 1, 1, 0), ("failed", "critical", 1, 1, 0)]


def test_min_level_decides_what_is_sent_and_everything_is_recorded(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(alerting(tmp_path, "critical"))
    break_file(tmp_path)
    etl_cli("run", str(path))
    assert received(tmp_path) == [("raised", "critical", "failed", "ohlcv/AAA/1h")]
    write_recent_hours(tmp_path / "AAA.csv", list(range(5)))
    etl_cli("run", str(path))
    assert received(tmp_path) == [("raised", "critical", "failed", "ohlcv/AAA/1h"),
                                  ("recovered", "info", "failed", "ohlcv/AAA/1h")], "only the sent one's recovery"
    with sqlite3.connect(tmp_path / ".etl" / "ledger.db") as db:
        assert db.execute("select cause, sent from alerts").fetchall() == [("stale", 0), ("failed", 1)]


def test_lock_contention_alerts_once_and_recovers(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(alerting(tmp_path, "warning"))
    write_recent_hours(tmp_path / "AAA.csv", list(range(5)))
    etl_cli("run", str(path))
    with PipelineLock(tmp_path / ".etl", "g"):
        assert etl_cli("run", str(path)).exit_code == 75
        assert etl_cli("run", str(path)).exit_code == 75
    assert received(tmp_path) == [("raised", "warning", "locked", "")]
    etl_cli("run", str(path))
    with sqlite3.connect(tmp_path / ".etl" / "ledger.db") as db:
        assert db.execute("select cause, recovered is not null from alerts").fetchall() == [("locked", 1)]


def test_a_failing_alert_command_is_recorded_and_does_not_change_the_exit_code(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly(settings='alert = { command = "exit 3" }'))
    break_file(tmp_path)
    result = etl_cli("run", str(path))
    assert result.exit_code == 1
    assert '"event": "alert command failed"' in result.stderr
    with sqlite3.connect(tmp_path / ".etl" / "ledger.db") as db:
        assert db.execute("select cause, sent, command_exit from alerts").fetchall() == [
            ("stale", 0, None), ("failed", 1, 3)]


def test_a_bad_alert_table_is_a_usage_error(write_pipeline, etl_cli):
    for table, message in [
        ('{ min_level = "error" }', "settings.alert needs a 'command' string"),
        ('{ command = "x", min_level = "loud" }', "Invalid settings.alert.min_level 'loud'; levels: info, warning, "
                                                  "error, critical"),
        ('{ command = "x", to = "ops" }', "Unknown key 'to' in settings.alert; valid keys: command, min_level"),
    ]:
        result = etl_cli("validate", str(write_pipeline(hourly(settings=f"alert = {table}"))))
        assert result.exit_code == 2
        assert message in result.stderr
