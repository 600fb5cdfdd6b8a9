"""A sink without the optional methods: ``--stored`` says so, ``etl.read`` and ``etl prune`` refuse it."""

import pytest

import etl
from tests.ops.helpers import write_hours

PIPELINE = """
[pipelines.g.source]
plugin = "files"
path = "{symbol}.csv"
columns = { ts = "timestamp" }
symbols = ["AAA"]
timeframes = ["1h"]

[[pipelines.g.sinks]]
plugin = "probe"
path = "probe"

[[pipelines.g.sinks]]
plugin = "duckdb"
path = "g.duckdb"
"""


@pytest.fixture
def probed(probe_sink, write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(PIPELINE)
    write_hours(tmp_path / "AAA.csv", [0, 1, 2])
    assert etl_cli("run", str(path)).exit_code == 0
    return path


def test_stored_says_the_sink_cannot_be_read_back(probed, etl_cli):
    shown = etl_cli("status", str(probed), "--stored")
    assert shown.exit_code == 0
    lines = [line.split("  ") for line in shown.stdout.splitlines()[1:]]
    assert [(parts[0], parts[-1].strip()) for parts in lines] == [("g", "this sink cannot be read back"), ("g", "ok")]


def test_read_takes_the_first_sink_that_can_be_read_back(probed):
    assert etl.read(probed, "g").collect()["ts"].dt.hour().to_list() == [0, 1, 2]


def test_read_with_no_readable_sink_is_a_config_error(probe_sink, write_pipeline, tmp_path):
    path = write_pipeline(PIPELINE.split("[[pipelines.g.sinks]]\nplugin = \"duckdb\"")[0])
    with pytest.raises(etl.ConfigError, match=r"pipelines.g: none of its sinks \(probe\) can be read back"):
        etl.read(path, "g")


def test_prune_refuses_before_touching_anything(probed, etl_cli):
    result = etl_cli("prune", str(probed), "-p", "g", "-s", "AAA", "--yes")
    assert result.exit_code == 2
    assert "pipelines.g: sink probe cannot remove rows, so nothing was pruned" in result.stderr
    assert etl_cli("status", str(probed), "--stored").stdout.splitlines()[2].split()[4] == "3"
