"""Fixtures shared by the whole suite: running the CLI, writing pipeline files, third-party plugins, the one
PostgreSQL server of the session (a database per test), a clock that stands still."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from etl import plugins
from etl.testing.pipelines import PIPELINE_FILE, run_cli
from etl.testing.pipelines import write_pipeline as write_pipeline_file
from fixtures.postgres_server import postgres_dsn, postgres_server

__all__ = ["postgres_dsn", "postgres_server"]

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_PACKAGES = Path(__file__).parent / "plugin_packages"


@pytest.fixture
def write_pipeline(tmp_path: Path):
    """Write a pipeline file into tmp_path (dedented) and return its path."""

    def write(text: str, name: str = PIPELINE_FILE) -> Path:
        return write_pipeline_file(tmp_path, textwrap.dedent(text), name)

    return write


@pytest.fixture
def etl_cli():
    """Invoke the CLI in-process: the kit's ``run_cli`` (exit_code, stdout, stderr, output)."""
    return run_cli


def with_plugins(paths: list[Path]) -> dict[str, str]:
    """Environment for the kit's ``run_subprocess`` that puts plugin folders ahead of the current PYTHONPATH."""
    current = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([*(str(path) for path in paths), *([current] if current else [])])}


def _install(package: str, target: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(PLUGIN_PACKAGES / package)],
        check=True, capture_output=True, text=True,
    )
    return target


@pytest.fixture(scope="session")
def plugin_sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test plugin packages, each pip-installed into its own folder (the environment is not modified)."""
    root = tmp_path_factory.mktemp("plugin-sites")
    return {name: _install(name, root / name) for name in ("etl-synthetic", "etl-broken", "etl-clash")}


@pytest.fixture
def use_plugins(plugin_sites: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    """Make the named test plugin packages importable in this process and rediscover entry points."""

    def use(*names: str) -> list[Path]:
        paths = [plugin_sites[name] for name in names]
        for path in paths:
            monkeypatch.syspath_prepend(str(path))
        plugins.reset()
        return paths

    yield use
    plugins.reset()


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> int:
    """Stop the clock half way through the current hour for this test (``ETL_CLOCK`` at speed 0), in the test,
    its fakes and the ``etl`` it runs, and return that moment (epoch ms): what the test derives from "now" and
    what the code under test reads agree exactly, whenever the test runs and however long it takes."""
    from etl.timeframes import MINUTE, floor_ts, now_ms

    moment = floor_ts(now_ms(), "1h") + 30 * MINUTE
    monkeypatch.setenv("ETL_CLOCK", f"0@{moment}")
    return moment
