"""The kit's own parts: a pytest plugin light enough for every pytest run, its fixtures, the TOML writer."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import requests

import etl.testing
from etl.base import Stream
from etl.datasets import dataset
from etl.testing import Reply, pytest_plugin, sample_rows, write_stream_csvs
from etl.testing.toml_writer import dumps

HEAVY = ("polars", "duckdb", "requests", "http.server", "etl.testing.server", "etl.testing.source_suite")


def test_the_pytest_plugin_imports_nothing_heavy():
    probe = f"import sys, etl.testing.pytest_plugin; print([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_pytest_plugin_defines_no_autouse_fixture():
    fixtures = [value for value in vars(pytest_plugin).values() if type(value).__name__ == "FixtureFunctionDefinition"]
    assert len(fixtures) == 2
    assert not [fixture for fixture in fixtures if fixture._fixture_function_marker.autouse]


def test_every_exported_name_resolves():
    assert all(getattr(etl.testing, name) is not None for name in etl.testing.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        etl.testing.Nope  # noqa: B018


def test_fake_server_serves_the_handler_and_its_queued_faults(fake_server):
    server = fake_server(lambda request: Reply.json({"path": request.path, "q": request.query}))
    server.fail_next(Reply.text("slow down", 429, {"Retry-After": "1"}))

    first = requests.get(f"{server.url}/a", params={"x": "1"}, timeout=5)
    second = requests.get(f"{server.url}/a", params={"x": "1"}, timeout=5)

    assert (first.status_code, first.text, first.headers["Retry-After"]) == (429, "slow down", "1")
    assert second.json() == {"path": "/a", "q": {"x": "1"}}
    assert [request.path for request in server.requests] == ["/a", "/a"]


def write_input(folder: Path) -> str:
    stream = Stream("ohlcv", "BTC-USD", "1h")
    return write_stream_csvs(folder, {stream: sample_rows(dataset("ohlcv"), stream, 1_704_067_200_000, 24)})


def test_run_pipeline_runs_the_cli_on_a_dict(run_pipeline, tmp_path):
    source = {"plugin": "files", "path": write_input(tmp_path / "input"), "symbols": ["BTC-USD"],
              "timeframes": ["1h"], "start": "2024-01-01", "end": "2024-01-02"}
    pipeline = {"pipelines": {"demo": {"source": source, "sinks": [{"plugin": "duckdb", "path": "out.duckdb"}]}}}

    run = run_pipeline(pipeline)
    validated = run_pipeline(pipeline, command="validate")

    assert run.exit_code == 0, run
    assert run.summary.startswith("etl run ok: 1 streams, 24 rows")
    assert run.path == tmp_path / "pipelines.toml" and (tmp_path / "out.duckdb").exists()
    assert validated.stdout == "pipelines.toml: 1 pipelines, 1 streams: OK\n"


def test_run_pipeline_reports_a_configuration_error(run_pipeline):
    run = run_pipeline('[pipelines.demo.source]\nplugin = "nope"\n\n[[pipelines.demo.sinks]]\nplugin = "duckdb"\n')

    assert run.exit_code == 2
    assert "Unknown source 'nope' in pipelines.demo.source.plugin" in run.stderr


@pytest.mark.parametrize("data", [
    {"settings": {"state_dir": "state"}, "pipelines": {"a.b": {"source": {"plugin": "x", "n": 3, "f": 1.5,
                                                                      "flag": False, "symbols": ["A", "B"]}}}},
    {"pipelines": {"p": {"source": {"columns": {"ts": "time", "odd key": "q\"uote\\d"}},
                         "sinks": [{"plugin": "duckdb", "extra": {"nested": [1, 2]}}, {"plugin": "parquet"}]}}},
    {"pipelines": {"p": {"source": {"plugin": "ünïcode", "empty": [], "tab": "a\tb", "nl": "a\nb"}}}},
])
def test_the_toml_writer_round_trips(data):
    assert tomllib.loads(dumps(data)) == data


def test_the_toml_writer_refuses_what_toml_cannot_hold():
    with pytest.raises(TypeError, match="cannot write None"):
        dumps({"pipelines": {"p": {"source": {"plugin": None}}}})
