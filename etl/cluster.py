"""Scale-out on Dask distributed: units of work run on the cluster's workers, the driver commits what they return.

Workers fetch and transform (the CPU- and network-bound part); the driver keeps the sinks, the committer and
the checkpoints, so a single-writer sink (DuckDB) works on a cluster and section 7 of DESIGN.md holds
unchanged: a batch's checkpoint moves only after every sink committed it. A unit runs through the same
``etl.unit.execute`` as in a thread here and comes back as values (its batches, each with its tally), so a
worker writes nothing and needs no access to the state dir. A worker lost mid-unit costs the re-execution of
that unit (Dask reschedules it; the upsert absorbs what its batches repeat).

Only ``2 x workers`` units are in flight at once, so the driver holds a bounded number of results whatever the
size of the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .log import get_logger

if TYPE_CHECKING:
    from .config import PipelineSpec
    from .report import Tally
    from .runner import Drive, Work
    from .unit import Batch, WorkUnit

log = get_logger("etl.cluster")

CONNECT_SECONDS = 10


@dataclass
class UnitOutput:
    """What a worker sends back for one unit: its batches, what it counted after the last one, its failure."""

    batches: list[Batch]
    tally: Tally
    error: str | None = None
    worker: str = ""
    seconds: float = 0.0
    traceback: str | None = field(default=None, repr=False)


@contextmanager
def driving(address: str | None, specs: list[PipelineSpec]) -> Iterator[Drive | None]:
    """The drive for ``--cluster ADDRESS`` (None without one: threads here), with its client open for the run;
    the workers' package versions are checked against the driver's first, and the shared rate budgets started
    on the scheduler if a pipeline asks for them."""
    if not address:
        yield None
        return
    client = connect(address)
    try:
        check_versions(client, sorted({("source", spec.source.plugin) for spec in specs}
                                      | {("transform", item.plugin) for spec in specs for item in spec.transforms}))
        if any(spec.rate_budget == "cluster" for spec in specs):
            share_budgets(client)
        log.info("cluster", address=address, workers=len(client.scheduler_info()["workers"]))
        yield cluster_drive(client)
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


def connect(address: str) -> Any:
    """A Dask client for ``tcp://HOST:PORT`` or ``local:N`` (N local worker processes, one thread each);
    ConfigError naming the address when no scheduler answers within 10 seconds."""
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its info lines would drown the run's own log
    if address.startswith("local:"):
        workers = _local_workers(address)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               worker_dashboard_address=None)
        return Client(cluster)
    try:
        return Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address} within {CONNECT_SECONDS}s: {exc}") from None


def _local_workers(address: str) -> int:
    count = address.removeprefix("local:")
    if not count.isdigit() or int(count) < 1:
        raise ConfigError(f"--cluster {address}: write local:N with N the number of worker processes, e.g. local:2")
    return int(count)


def check_versions(client: Any, plugins: list[tuple[str, str]]) -> None:
    """Refuse a cluster whose workers run other versions of market-etl or of the pipeline's plugins (kind,
    name): a unit would compute other rows there than here. ConfigError naming the packages."""
    mine = package_versions(plugins)
    theirs = client.run(package_versions, plugins)
    if not theirs:
        raise ConfigError("the Dask cluster has no worker")
    differing = sorted({f"{name} {mine[name]} here, {found.get(name, 'missing')} on {worker}"
                        for worker, found in theirs.items() for name in mine if found.get(name) != mine[name]})
    if differing:
        raise ConfigError("workers run other package versions than this driver: " + "; ".join(differing[:5]))


def package_versions(plugins: list[tuple[str, str]]) -> dict[str, str]:
    """market-etl's version and that of the package of each plugin (kind, name), as installed in this process."""
    from importlib.metadata import version

    from .plugins import registry

    found = {"market-etl": version("market-etl")}
    for kind, name in plugins:
        registration = registry().entries[kind].get(name)
        if registration is not None:
            found[registration.package] = registration.version
    return found


def cluster_drive(client: Any) -> Drive:
    """The driver of a pipeline run on a cluster (``etl.runner.Drive``)."""

    def drive(work: Work) -> None:
        from distributed import as_completed

        from .cluster_worker import SourcesPlugin, run_unit
        from .runner import start_unit

        client.register_plugin(SourcesPlugin(work.rate_budget), name=SourcesPlugin.name)
        waiting = [unit for unit in work.units if start_unit(unit, work)][::-1]
        running: dict[str, WorkUnit] = {}

        def submit() -> Any:
            unit = waiting.pop()
            future = client.submit(run_unit, unit, pure=False)
            running[future.key] = unit
            return future

        in_flight = max(1, 2 * len(client.scheduler_info()["workers"]))
        finished = as_completed([submit() for _ in range(min(in_flight, len(waiting)))])
        for future in finished:
            take(future.result(), running.pop(future.key), work)
            future.release()
            if waiting:
                finished.add(submit())

    return drive


def share_budgets(client: Any) -> None:
    """Start the cluster's shared rate budgets on the scheduler; ConfigError when the scheduler cannot load
    them (it runs without market-etl, or another version of it)."""
    from .cluster_budget import BudgetBank

    try:
        client.register_plugin(BudgetBank(), name=BudgetBank.name)
    except Exception as exc:
        version = package_versions([])["market-etl"]
        raise ConfigError(f'rate_budget = "cluster" keeps the budget on the Dask scheduler, which cannot load it '
                          f"({type(exc).__name__}: {exc}): install market-etl {version} there too") from None


def take(output: UnitOutput, unit: WorkUnit, work: Work) -> None:
    """Hand a finished unit's batches to the committer, as its thread here would have, and note where it ran
    and for how long (the ledger's ``unit_runs``)."""
    from .report import UnitRun
    from .runner import deliver

    log.debug("unit ran", stream=unit.stream.label, worker=output.worker, seconds=round(output.seconds, 3),
              batches=len(output.batches))
    rows = deliver(unit, output.batches, work, finished=output.error is None)
    output.tally.apply(work.report, unit.stream)
    work.report.unit_ran(UnitRun(unit.key, unit.start, unit.end, output.worker, output.seconds, rows, output.error))
    if output.error is not None:
        log.debug("stream traceback", stream=unit.stream.label, worker=output.worker, traceback=output.traceback)
        work.committer.fail(unit.stream, output.error)
