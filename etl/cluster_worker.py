"""What runs on a Dask worker: a unit of work through ``etl.unit.execute``, returned as values.

Imported on workers (and by the driver when it submits), never by ``etl`` itself, so ``distributed`` loads only
for ``--cluster`` runs.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from distributed import WorkerPlugin, get_worker

from . import faults
from .cluster import UnitOutput
from .cluster_budget import share_on, stop_sharing
from .committer import describe
from .report import Tally
from .unit import SourcePool, WorkUnit, execute


class SourcesPlugin(WorkerPlugin):
    """Holds a worker's ``SourcePool``: one source per configuration on each worker, so market metadata loads
    once per worker and every unit there shares the source's rate limiter; closed when the worker stops or
    the next pipeline registers its own. With ``rate_budget = "cluster"`` those limiters are the scheduler's
    (``etl.cluster_budget``), shared by every worker."""

    name = "etl-sources"

    def __init__(self, rate_budget: str = "worker"):
        self.rate_budget = rate_budget

    def setup(self, worker: Any) -> None:
        if self.rate_budget == "cluster":
            share_on(worker)
        self.sources = SourcePool()

    def teardown(self, worker: Any) -> None:
        self.sources.close()
        stop_sharing()


def run_unit(unit: WorkUnit) -> UnitOutput:
    """The unit, collected; a failure is returned, not raised, so the batches made before it still reach the
    sinks (as they do in a local run) and Dask does not run a unit again for a bad symbol."""
    began, worker = time.monotonic(), get_worker()
    tally = Tally()
    output = UnitOutput([], tally, worker=worker.address)
    try:
        for batch in execute(unit, worker.plugins[SourcesPlugin.name].sources, tally):
            faults.point("worker_batch")
            output.batches.append(batch)
    except Exception as exc:
        output.error, output.traceback = describe(exc), traceback.format_exc()
    output.tally = tally.drain()
    output.seconds = time.monotonic() - began
    return output
