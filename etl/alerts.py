"""Alerts: a command of the user's, run when a stream fails, falls behind its ``max_lag``, or a pipeline finds
its lock held, and once more when the cause has gone.

An alert is raised once per pipeline, stream and cause, and not again until it recovers: a stream that fails
every five minutes all night pages once. Every alert is recorded in the ledger's database (table ``alerts``,
with the command's exit status), sent or not: ``min_level`` only decides which ones run the command, and a
recovery runs it when its alert did. The command gets the alert as JSON on stdin and in ``ETL_ALERT_*``
environment variables, and runs through the shell, as a cron line would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .log import get_logger
from .timeframes import iso, now_ms

log = get_logger("etl.alerts")

LEVELS = ("info", "warning", "error", "critical")
COMMAND_TIMEOUT = 30.0
_SCHEMA = """
create table if not exists alerts (
    pipeline text, stream text, cause text, level text, message text, raised text, recovered text,
    sent integer, command_exit integer
);
create index if not exists idx_alerts_key on alerts (pipeline, stream, cause);
"""


@dataclass(frozen=True)
class AlertSettings:
    command: str
    min_level: str = "error"


@dataclass(frozen=True)
class Alert:
    """``state`` is ``raised`` or ``recovered``; ``stream`` is empty for a whole pipeline (its lock)."""

    level: str
    cause: str
    pipeline: str
    stream: str
    message: str
    state: str = "raised"
    time: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.pipeline, self.stream, self.cause


def alert_settings(value: dict[str, Any] | None) -> AlertSettings | None:
    """``[settings] alert``, checked: a ``command`` string and a ``min_level`` among LEVELS."""
    if value is None:
        return None
    unknown = sorted(set(value) - {"command", "min_level"})
    if unknown:
        raise ConfigError(f"Unknown key {unknown[0]!r} in settings.alert; valid keys: command, min_level")
    command, level = value.get("command"), value.get("min_level", "error")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError("settings.alert needs a 'command' string, e.g. { command = \"notify-ops\" }")
    if level not in LEVELS:
        raise ConfigError(f"Invalid settings.alert.min_level {level!r}; levels: {', '.join(LEVELS)}")
    return AlertSettings(command, level)


def notify(state_dir: Path, settings: AlertSettings, current: list[Alert], scope: set[str]) -> None:
    """Raise the alerts of ``current`` not already raised, and recover the raised ones of the ``scope``
    pipelines that ``current`` no longer holds; the command runs for those at ``min_level`` or above."""
    book = sqlite3.connect(state_dir / "ledger.db", timeout=30)
    try:
        book.executescript(_SCHEMA)
        raised = {(pipeline, stream, cause): bool(sent) for pipeline, stream, cause, sent in book.execute(
            "select pipeline, stream, cause, sent from alerts where recovered is null order by rowid")}
        now = iso(now_ms())
        for alert in current:
            if alert.key not in raised:
                _record(book, settings, Alert(**{**asdict(alert), "time": now}))
        found = {alert.key for alert in current}
        for (pipeline, stream, cause), sent in raised.items():
            if pipeline in scope and (pipeline, stream, cause) not in found:
                gone = Alert("info", cause, pipeline, stream, f"{cause} recovered", "recovered", now)
                _record(book, settings, gone, sent)
    finally:
        book.close()


def _record(book: sqlite3.Connection, settings: AlertSettings, alert: Alert, raise_sent: bool = False) -> None:
    """Record the alert and run the command for it: for a raised alert at ``min_level`` or above, for a recovery
    when its raised alert was sent (whoever was told of a problem hears of its end)."""
    send = raise_sent if alert.state == "recovered" else LEVELS.index(alert.level) >= LEVELS.index(settings.min_level)
    exit_code = run_command(settings.command, alert) if send else None
    with book:
        if alert.state == "recovered":
            book.execute("update alerts set recovered = ? where pipeline = ? and stream = ? and cause = ? "
                         "and recovered is null", (alert.time, *alert.key))
        else:
            book.execute("insert into alerts values (?, ?, ?, ?, ?, ?, null, ?, ?)",
                         (*alert.key, alert.level, alert.message, alert.time, int(send), exit_code))


def run_command(command: str, alert: Alert) -> int:
    """Run the alert command with the alert on stdin and in the environment; its exit status (-1: timed out)."""
    payload = json.dumps(asdict(alert), sort_keys=True)
    env = {**os.environ, **{f"ETL_ALERT_{name.upper()}": str(value) for name, value in asdict(alert).items()},
           "ETL_ALERT_JSON": payload}
    try:
        done = subprocess.run(command, shell=True, input=payload, text=True, env=env, capture_output=True,
                              timeout=COMMAND_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        log.warning("alert command timed out", command=command, seconds=COMMAND_TIMEOUT)
        return -1
    if done.returncode:
        log.warning("alert command failed", command=command, exit_code=done.returncode,
                    stderr=done.stderr.strip()[-500:])
    return done.returncode
