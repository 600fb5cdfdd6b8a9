"""Fixtures of the scale-out tests: a real Dask cluster, and the market its units read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_helpers import DaskCluster, environment, start_cluster, write_market


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[DaskCluster]:
    """Two workers; a cluster that cannot start fails the test (in CI and here alike). One for the session: the
    tests that share it kill drivers, never workers, and each reads its own market through its own fakes (the
    tests that kill a worker or need other workers start their own)."""
    cluster = start_cluster([environment(), environment()])
    yield cluster
    cluster.stop()


@pytest.fixture
def market(tmp_path: Path) -> Path:
    return write_market(tmp_path / "data")
