"""Fixtures of the scale-out tests: a real Dask cluster, and the market its units read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_helpers import DaskCluster, environment, start_cluster, write_market


@pytest.fixture
def dask_cluster() -> Iterator[DaskCluster]:
    """Two workers; a cluster that cannot start fails the test (in CI and here alike)."""
    cluster = start_cluster([environment(), environment()])
    yield cluster
    cluster.stop()


@pytest.fixture
def market(tmp_path: Path) -> Path:
    return write_market(tmp_path / "data")
