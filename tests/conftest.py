"""Fixtures shared by the whole suite: running the CLI, writing pipeline files, third-party plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from etl import plugins
from etl.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_PACKAGES = Path(__file__).parent / "plugin_packages"


@pytest.fixture
def write_pipeline(tmp_path: Path):
    """Write a pipeline file into tmp_path (dedented) and return its path."""

    def write(text: str, name: str = "pipelines.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def etl_cli():
    """Invoke the CLI in-process; returns click's Result (exit_code, stdout, stderr, output)."""

    def invoke(*args: str, env: dict[str, str] | None = None):
        return CliRunner().invoke(cli, ["--log-format", "json", *args], env=env, catch_exceptions=False)

    return invoke


def run_etl(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            pythonpath: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m etl`` in a subprocess (for kills, locks and import checks)."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    return subprocess.run([sys.executable, "-m", "etl", "--log-format", "json", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


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
