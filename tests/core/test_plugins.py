"""Plugins: a pip-installed third-party package shows up and runs; broken and clashing ones are contained."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb

from etl.testing.pipelines import run_subprocess
from tests.conftest import with_plugins

SYNTHETIC_PIPELINE = """
    [pipelines.synth.source]
    plugin = "synthetic"
    symbols = ["AAA", "BBB"]
    timeframes = ["1h"]
    start = "2024-01-01"
    end = "2024-01-03"

    [[pipelines.synth.sinks]]
    plugin = "duckdb"
    path = "synth.duckdb"
"""


def plugins_json(*paths) -> list[dict]:
    result = run_subprocess("plugins", "--json", env=with_plugins(list(paths)))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def by_name(listing: list[dict]) -> dict[str, dict]:
    return {plugin["name"]: plugin for plugin in listing}


def test_third_party_plugin_is_listed_with_package_and_version(plugin_sites):
    plugin = by_name(plugins_json(plugin_sites["etl-synthetic"]))["synthetic"]
    assert plugin == {
        "name": "synthetic",
        "package": "etl-synthetic",
        "version": "1.2.3",
        "kinds": ["source"],
        "registered": [{"kind": "source", "name": "synthetic"}],
        "error": None,
    }


def test_builtins_come_through_the_same_entry_points(plugin_sites):
    listing = by_name(plugins_json())
    assert listing["duckdb"]["package"] == "market-etl"
    assert listing["duckdb"]["registered"] == [{"kind": "sink", "name": "duckdb"}]
    assert listing["files"]["registered"] == [{"kind": "source", "name": "files"}]


def test_third_party_source_runs_in_a_pipeline(plugin_sites, write_pipeline, tmp_path):
    path = write_pipeline(SYNTHETIC_PIPELINE)
    result = run_subprocess("run", str(path), env=with_plugins([plugin_sites["etl-synthetic"]]))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("etl run ok: 2 streams, 96 rows")
    with duckdb.connect(str(tmp_path / "synth.duckdb"), read_only=True) as con:
        assert con.execute("select symbol, count(*) from ohlcv group by 1 order by 1").fetchall() == [
            ("AAA", 48), ("BBB", 48)
        ]


def test_broken_plugin_is_reported_and_the_others_keep_working(plugin_sites, write_pipeline):
    paths = [plugin_sites["etl-broken"], plugin_sites["etl-synthetic"]]
    listing = by_name(plugins_json(*paths))
    assert listing["broken"]["error"] == "ImportError: etl_broken needs the 'unobtainium' package"
    assert listing["broken"]["registered"] == []
    assert listing["synthetic"]["error"] is None

    text = run_subprocess("plugins", env=with_plugins(paths))
    assert text.exit_code == 0
    assert "error: broken (etl-broken 0.0.1): ImportError: etl_broken needs the 'unobtainium' package" in text.stdout
    assert "plugin failed to load" in text.stderr

    result = run_subprocess("run", str(write_pipeline(SYNTHETIC_PIPELINE)), env=with_plugins(paths))
    assert result.exit_code == 0, result.stderr


def test_duplicate_name_is_refused_naming_both_packages(plugin_sites, write_pipeline):
    paths = [plugin_sites["etl-clash"]]
    result = run_subprocess("plugins", env=with_plugins(paths))
    assert "duplicate plugin name refused" in result.stderr
    assert "market-etl (files) and etl-clash (clash)" in result.stderr

    pipeline = write_pipeline("""
        [pipelines.p.source]
        plugin = "files"
        path = "x.csv"
        symbols = ["A"]
        timeframes = ["1d"]

        [[pipelines.p.sinks]]
        plugin = "duckdb"
        path = "p.duckdb"
    """)
    run = run_subprocess("run", str(pipeline), env=with_plugins(paths))
    assert run.exit_code == 2
    assert ("Source 'files' in pipelines.p.source.plugin is registered by both market-etl (files) and "
            "etl-clash (clash)") in run.stderr


def test_etl_load_plugins_limits_third_party_plugins(plugin_sites):
    paths = [plugin_sites["etl-synthetic"], plugin_sites["etl-broken"]]
    only = by_name(json.loads(run_subprocess("plugins", "--json",
                                             env={**with_plugins(paths), "ETL_LOAD_PLUGINS": "synthetic"}).stdout))
    assert "synthetic" in only and "broken" not in only and "duckdb" in only
    none = by_name(json.loads(run_subprocess("plugins", "--json",
                                             env={**with_plugins(paths), "ETL_LOAD_PLUGINS": ""}).stdout))
    assert "synthetic" not in none and "broken" not in none and "files" in none


def test_in_process_registry_sees_a_newly_installed_plugin(use_plugins, etl_cli):
    use_plugins("etl-synthetic")
    result = etl_cli("plugins")
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("synthetic"))
    assert line.split() == ["synthetic", "source", "etl-synthetic", "1.2.3", "synthetic"]


HEAVY = ["polars", "duckdb", "pyarrow", "ccxt", "yfinance", "boto3", "psycopg", "lz4", "pandas", "tenacity"]


def test_help_and_plugins_import_no_heavy_library():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from etl.cli import cli\n"
        "for args in (['--help'], ['plugins'], ['plugins', '--json']):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
