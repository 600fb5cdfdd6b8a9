"""The example third-party plugin (examples/etl-example-source), installed with pip and run end to end.

It is pip-installed into a temporary folder (the shared environment is not modified) and used through
PYTHONPATH by subprocesses: ``etl plugins``, a real ``etl run`` against a local alternative.me, and the
plugin's own test suite, which runs the market-etl conformance kit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from etl.testing import FakeServer, run_subprocess, write_pipeline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "etl-example-source"


def load_fake():
    """The example's own fake alternative.me (its tests folder is not a package)."""
    spec = importlib.util.spec_from_file_location("fake_alternative_me", EXAMPLE / "tests" / "fake_alternative_me.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fake = load_fake()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("example-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True, text=True)
    return target


def with_site(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_etl_plugins_lists_the_installed_plugin(site):
    run = run_subprocess("plugins", "--json", env=with_site(site), path=site)

    assert run.exit_code == 0, run
    plugins = {entry["name"]: entry for entry in json.loads(run.stdout)}
    assert plugins["fear_greed"] == {
        "name": "fear_greed",
        "package": "etl-fear-greed",
        "version": "1.0.0",
        "kinds": ["dataset", "source"],
        "registered": [{"kind": "source", "name": "fear_greed"}, {"kind": "dataset", "name": "sentiment"}],
        "error": None,
    }
    assert plugins["files"]["package"] == "market-etl"
    table = run_subprocess("plugins", env=with_site(site), path=site)
    assert any(line.split()[:3] == ["fear_greed", "source", "etl-fear-greed"] for line in table.stdout.splitlines())


def test_without_the_install_it_is_not_there(site):
    run = run_subprocess("plugins", "--json", path=site)

    assert "fear_greed" not in {entry["name"] for entry in json.loads(run.stdout)}


def test_a_pipeline_using_it_lands_its_rows(site, tmp_path):
    with FakeServer(fake.handle) as server:
        path = write_pipeline(tmp_path, {"pipelines": {"mood": {
            "source": {"plugin": "fear_greed", "base_url": server.url, "start": "2024-02-27", "end": "2024-03-02"},
            "sinks": [{"plugin": "duckdb", "path": "data/market.duckdb"}],
        }}})
        run = run_subprocess("run", str(path), env=with_site(site))
        again = run_subprocess("run", str(path), env=with_site(site))

    assert run.exit_code == 0, run
    assert run.summary.startswith("etl run ok: 1 streams, 4 rows"), run
    assert again.exit_code == 0 and "0 rows" in again.summary, again
    with duckdb.connect(str(tmp_path / "data" / "market.duckdb"), read_only=True) as connection:
        rows = connection.sql("SELECT symbol, epoch_ms(ts) // 1000, value, classification FROM sentiment "
                              "ORDER BY ts").fetchall()
    days = [fake.date(2024, 2, 27) + fake.timedelta(days=n) for n in range(4)]
    assert rows == [("crypto", fake.day_start(day), float(fake.reading(day)), fake.classification(fake.reading(day)))
                    for day in days]


def test_its_own_tests_pass_with_the_conformance_kit(site):
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"],
        cwd=EXAMPLE, env={**os.environ, **with_site(site), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=600,
    )

    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "TestFearGreedConforms::test_adjacent_windows_neither_overlap_nor_leave_a_hole PASSED" in run.stdout
