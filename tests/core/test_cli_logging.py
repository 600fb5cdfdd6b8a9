"""Failures that say why: tracebacks in the JSON log (and with -v), one-line FAILED messages, logging options
in either place, and library log lines rendered like ours."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from etl.cli import cli
from etl.testing.pipelines import single_pipeline, write_pipeline

POLARS_MESSAGE = (
    "conversion from `str` to `datetime[ms, UTC]` failed in column 'ts' for 1 out of 2 values: [\"not-a-time\"] "
    "You might want to try: - setting `strict=False` to set values that cannot be converted to `null` "
    "- using `str.strptime`, `str.to_date`, `str.to_datetime`, or `str.to_time` and providing a format string"
)


def bad_timestamps(folder: Path) -> Path:
    """A files pipeline whose CSV has a timestamp polars cannot parse (its message spans several lines)."""
    (folder / "BTC.csv").write_text("ts,open,high,low,close,volume\n"
                                    "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\nnot-a-time,1,2,0.5,1.5,10\n")
    source = {"plugin": "files", "path": "BTC.csv", "symbols": ["BTC"], "timeframes": ["1h"],
              "start": "2024-01-01", "end": "2024-01-02"}
    return write_pipeline(folder, single_pipeline(source, [{"plugin": "parquet", "path": "lake"}], name="f"))


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines()]


def test_failed_line_is_one_line_and_the_json_log_has_the_traceback(tmp_path):
    result = invoke("--log-format", "json", "run", str(bad_timestamps(tmp_path)))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"FAILED f ohlcv/BTC/1h: files: cannot read BTC.csv for ohlcv/BTC/1h: " \
                                            f"{POLARS_MESSAGE}"
    traceback = next(event for event in events(result.stderr) if event["event"] == "stream traceback")
    assert traceback["level"] == "error" and traceback["stream"] == "ohlcv/BTC/1h"
    assert traceback["exception"].startswith("Traceback (most recent call last):\n")
    assert "etl.errors.SourceError: files: cannot read BTC.csv" in traceback["exception"]


def test_a_batch_a_sink_refuses_logs_its_traceback_too(tmp_path):
    """The second run's extra column is text where the table holds integers: SQLite refuses the batch."""
    csv = tmp_path / "BTC.csv"
    csv.write_text("ts,open,high,low,close,volume,note\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10,7\n")
    source = {"plugin": "files", "path": "BTC.csv", "symbols": ["BTC"], "timeframes": ["1h"], "start": "2024-01-01"}
    path = write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "sqlite", "path": "m.db"}], name="f"))
    assert invoke("run", str(path)).exit_code == 0
    with csv.open("a") as handle:
        handle.write("2024-01-01T01:00:00Z,1,2,0.5,1.5,10,seven\n")

    result = invoke("--log-format", "json", "run", str(path))
    assert result.exit_code == 1
    assert "column 'note' is INTEGER but the batch has TEXT" in result.stdout.splitlines()[0]
    traceback = next(event for event in events(result.stderr) if event["event"] == "stream traceback")
    assert traceback["stream"] == "ohlcv/BTC/1h" and "etl.errors.SinkError" in traceback["exception"]


def test_console_shows_the_traceback_only_with_verbose_given_after_the_subcommand(tmp_path):
    path = str(bad_timestamps(tmp_path))
    plain = invoke("run", str(path), "--log-format", "console")
    assert plain.exit_code == 1 and "stream failed" in plain.stderr
    assert "Traceback" not in plain.stderr
    verbose = invoke("run", str(path), "--log-format", "console", "-v")
    assert "Traceback (most recent call last):" in verbose.stderr


def test_logging_options_are_accepted_before_and_after_the_subcommand(tmp_path):
    source = {"plugin": "files", "path": str(Path(__file__).resolve().parents[2] / "fixtures" / "ohlcv" /
                                             "BTCUSDT_1d.csv"),
              "columns": {"ts": "timestamp"}, "symbols": ["BTCUSDT"], "timeframes": ["1d"]}
    path = str(write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "parquet", "path": "lake"}])))
    quiet_after = invoke("run", path, "-q", "--log-format", "json")
    assert (quiet_after.exit_code, quiet_after.stdout, quiet_after.stderr) == (0, "", "")
    verbose_after = invoke("--log-format", "json", "run", "-v", path)
    assert verbose_after.exit_code == 0
    assert "stream fetched" in [event["event"] for event in events(verbose_after.stderr)]
    assert verbose_after.stdout.startswith("etl run ok: 1 streams, 0 rows")
    assert invoke("status", path, "--log-format", "json", "-q").exit_code == 0
    assert invoke("validate", "-v", path).exit_code == 0
    assert invoke("plugins", "-q").exit_code == 0


LIBRARY_LOGS = """
import logging, warnings
from etl.log import configure
configure("json", VERBOSITY)
logging.getLogger("yfinance").debug("crumb = 'abc'")
logging.getLogger("yfinance").warning("Failed to get ticker 'X'")
warnings.warn("a library's deprecation")
"""


def library_lines(verbosity: int) -> list[dict]:
    completed = subprocess.run([sys.executable, "-c", LIBRARY_LOGS.replace("VERBOSITY", str(verbosity))],
                               capture_output=True, text=True, check=True)
    return [json.loads(line) for line in completed.stderr.splitlines()]


def test_library_logging_is_json_and_below_warnings_only_with_verbose():
    lines = library_lines(0)
    assert [(line["logger"], line["level"], line["event"]) for line in lines] == [
        ("yfinance", "warning", "Failed to get ticker 'X'"),
        ("py.warnings", "warning", lines[1]["event"]),
    ]
    assert "UserWarning: a library's deprecation" in lines[1]["event"]
    assert library_lines(1)[0]["event"] == "crumb = 'abc'"
