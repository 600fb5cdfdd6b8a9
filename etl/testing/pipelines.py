"""Run the real ``etl`` command on a pipeline written by a test.

Conformance checks go through the same doors users do: a TOML file on disk, ``etl.config.load`` for
validation, and the click CLI for runs, so a plugin that passes the suite works in a real pipeline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .toml_writer import dumps

PIPELINE_FILE = "pipelines.toml"


@dataclass
class PipelineRun:
    """What one ``etl`` command did: its exit code and what it printed."""

    path: Path
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def summary(self) -> str:
        """The last line of stdout: ``etl run ok: 2 streams, 48 rows, ...``."""
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def __str__(self) -> str:
        return f"etl exited {self.exit_code} on {self.path}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def write_pipeline(folder: Path, pipeline: Mapping[str, Any] | str, name: str = PIPELINE_FILE) -> Path:
    """Write ``pipeline`` (a dict, or TOML text) to ``folder/name`` and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(pipeline if isinstance(pipeline, str) else dumps(pipeline))
    return path


def single_pipeline(source: Mapping[str, Any], sinks: list[Mapping[str, Any]],
                    transforms: list[Mapping[str, Any]] | None = None, name: str = "conformance",
                    **pipeline_keys: Any) -> dict[str, Any]:
    """A pipeline file holding one pipeline, as a dict ready for ``write_pipeline``."""
    table: dict[str, Any] = {"source": dict(source), **pipeline_keys}
    if transforms:
        table["transforms"] = [dict(item) for item in transforms]
    table["sinks"] = [dict(item) for item in sinks]
    return {"pipelines": {name: table}}


def run_cli(*args: str, env: Mapping[str, str] | None = None, path: Path | None = None) -> PipelineRun:
    """Invoke ``etl ARGS`` in this process (fast; the plugin registry is shared with the test)."""
    from click.testing import CliRunner

    from etl.cli import cli

    result = CliRunner().invoke(cli, ["--log-format", "json", *args], env=dict(env or {}), catch_exceptions=False)
    return PipelineRun(path or Path(args[-1]), result.exit_code, result.stdout, result.stderr)


def run_subprocess(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                   path: Path | None = None, timeout: float = 300) -> PipelineRun:
    """Invoke ``python -m etl ARGS`` in a child process, e.g. with another PYTHONPATH."""
    completed = subprocess.run(
        [sys.executable, "-m", "etl", "--log-format", "json", *args],
        env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )
    return PipelineRun(path or Path(args[-1]), completed.returncode, completed.stdout, completed.stderr)
