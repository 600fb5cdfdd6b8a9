"""pytest plugin of market-etl (registered through the ``pytest11`` entry point).

Every pytest run in an environment with market-etl installed loads this module, so it imports nothing
heavy and defines no autouse fixture. It offers plugin authors two fixtures:

- ``fake_server(handler)``: a started ``etl.testing.FakeServer`` serving recorded responses, stopped at
  teardown;
- ``run_pipeline(pipeline, *args, command="run")``: write a pipeline (dict or TOML text) into the test's
  tmp_path and invoke the real ``etl`` command on it; returns an ``etl.testing.PipelineRun``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("etl.testing.suite", "etl.testing.source_suite", "etl.testing.sink_suite",
                               "etl.testing.transform_suite")


@pytest.fixture
def fake_server() -> Iterator[Callable[..., Any]]:
    """Start a local HTTP server: ``server = fake_server(handler)``; ``server.url`` is its base URL."""
    from .server import FakeServer

    started: list[FakeServer] = []

    def start(handler: Callable[..., Any]) -> FakeServer:
        server = FakeServer(handler).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def run_pipeline(tmp_path: Path) -> Callable[..., Any]:
    """Write a pipeline into tmp_path and run ``etl COMMAND FILE ARGS`` in-process."""
    from .pipelines import run_cli, write_pipeline

    def run(pipeline: Mapping[str, Any] | str, *args: str, command: str = "run",
            env: Mapping[str, str] | None = None) -> Any:
        path = write_pipeline(tmp_path, pipeline)
        return run_cli(command, str(path), *args, env=env, path=path)

    return run
