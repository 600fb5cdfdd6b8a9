"""Helpers for testing sources, transforms and sinks, for this project and for plugin authors.

    from etl.testing import FakeServer, Reply, SinkConformance, SourceConformance, TransformConformance

Names load on first use, so ``import etl.testing`` (done by the pytest plugin in every test run) costs
nothing: the suites import pytest, the server imports http.server.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "FakeServer": "server",
    "Reply": "server",
    "Request": "server",
    "SourceConformance": "source_suite",
    "WindowRead": "source_suite",
    "read_window": "source_suite",
    "SinkConformance": "sink_suite",
    "TransformConformance": "transform_suite",
    "PipelineRun": "pipelines",
    "run_cli": "pipelines",
    "run_subprocess": "pipelines",
    "single_pipeline": "pipelines",
    "write_pipeline": "pipelines",
    "sample_rows": "samples",
    "write_stream_csvs": "samples",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'etl.testing' has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
