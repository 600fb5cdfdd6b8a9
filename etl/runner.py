"""Runs pipelines: streams -> transforms -> sinks, checkpoint after every sink committed, under a lock.

Delivery is at-least-once into idempotent sinks: a batch is written to every sink, and only then does
its stream's checkpoint advance. A crash anywhere replays at most the batches after the last checkpoint,
which the sinks upsert to the same rows.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import universe
from .base import PluginContext, Stream
from .checkpoint import Checkpoints, read_json
from .committer import Committer, SinkSlot, describe
from .config import PipelineSpec, Project
from .errors import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, ConfigError, LockedError
from .ledger import Ledger
from .lock import PipelineLock
from .log import get_logger, log_traceback
from .progress import Progress
from .report import Report, StreamResult, Tally, UnitRun
from .timeframes import iso, now_ms, previous_bar
from .unit import Batch, SourcePool, WorkUnit, build_transforms, chain_warmup, chunk_key, execute
from .windows import Span, Windows, fixed, incremental, last_closed, live

log = get_logger("etl.runner")



@dataclass
class Work:
    """A pipeline run's units and what running them needs: their sources, the committer that writes what they
    produce, the report that counts it, and how many may run at once."""

    units: list[WorkUnit]
    sources: SourcePool
    committer: Committer
    report: Report
    workers: int
    rate_budget: str = "worker"


# Runs a pipeline's units into its committer: fetch them here (``fetch_units``), on a Dask cluster
# (``etl.cluster``), or follow them live (``etl.streaming``).
Drive = Callable[[Work], None]


@dataclass
class Outcome:
    """Everything the CLI needs to print a summary and choose an exit code."""

    command: str
    results: list[StreamResult] = field(default_factory=list)
    # pipeline -> why it could not run: another run held its lock, or another process one of its sink files
    locked: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # pipeline -> why it stopped before any stream result
    duration: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.failed or any(result.error for result in self.results):
            return EXIT_FAILED
        return EXIT_LOCKED if self.locked else EXIT_OK

    def summary(self) -> str:
        failed = [r for r in self.results if r.error]
        rows = sum(r.rows for r in self.results)
        quarantined = sum(r.counters.get("quarantined", 0) for r in self.results)
        status = "failed" if failed or self.failed else ("locked" if self.locked else "ok")
        parts = [f"{len(self.results)} streams", f"{rows:,} rows", f"{quarantined:,} quarantined",
                 f"{len(failed)} failed", f"{self.duration:.1f}s"]
        counters: dict[str, int] = {}
        for result in self.results:
            for name, value in result.counters.items():
                counters[name] = counters.get(name, 0) + value
        parts += [f"{name.replace('_', ' ')}: {value:,}" for name, value in sorted(counters.items())
                  if name != "quarantined" and value]
        if self.locked:
            parts.append(f"locked: {', '.join(self.locked)}")
        return f"etl {self.command} {status}: " + ", ".join(parts)


def run(project: Project, names: tuple[str, ...], progress: bool = False, drive: Drive | None = None) -> Outcome:
    """Incremental run of the named (or all) pipelines from their checkpoints."""
    outcome = Outcome("run")
    started = time.monotonic()
    specs = project.select(names)
    for spec in specs:
        Checkpoints(_checkpoint_path(project, spec.name))
    for spec in specs:
        checkpoint_path = _checkpoint_path(project, spec.name)
        _run_locked(project, spec, "run", checkpoint_path, {"pipeline": spec.name}, incremental(spec),
                    outcome, progress, drive)
    outcome.duration = time.monotonic() - started
    return outcome


def _checkpoint_path(project: Project, pipeline: str) -> Path:
    return project.state_dir / "checkpoints" / f"{pipeline}.json"


def backfill(project: Project, pipeline: str, start: int, end: int | None, progress: bool = False,
             drive: Drive | None = None) -> Outcome:
    """Fill ``[start, end)`` for one pipeline, recording the range so ``resume`` can continue it."""
    (spec,) = project.select([pipeline])
    end = end if end is not None else now_ms()
    if end <= start:
        raise ConfigError(f"--end ({iso(end)}) must be after --start ({iso(start)})")
    header = {"kind": "backfill", "pipeline": pipeline, "file": str(project.path), "start": iso(start),
              "end": iso(end), "start_ms": start, "end_ms": end, "chunk": spec.chunk, "status": "running"}
    path = project.state_dir / "backfills" / f"{pipeline}__{iso(start)}__{iso(end)}.json".replace(":", "")
    outcome = Outcome("backfill")
    began = time.monotonic()
    _run_locked(project, spec, "backfill", path, header, fixed(start, end, spec.chunk), outcome, progress, drive)
    outcome.duration = time.monotonic() - began
    return outcome


def plan(project: Project, pipeline: str, start: int, end: int | None) -> Iterator[str]:
    """What a backfill of ``[start, end)`` would fetch, stream by stream, as the source describes it."""
    (spec,) = project.select([pipeline])
    end = end if end is not None else now_ms()
    sources = SourcePool()
    try:
        config = universe.resolve(spec.source, sources.get(spec.source))[0] if spec.source.selector else spec.source
        source = sources.get(config)
        for stream in source.streams():
            named = dataclasses.replace(stream, symbol=config.symbol_for(stream.symbol))  # as the source names it
            yield from source.plan(named, start, min(end, last_closed(stream)))
    finally:
        sources.close()


def unfinished_backfills(project: Project) -> list[tuple[Path, dict[str, Any]]]:
    folder = project.state_dir / "backfills"
    records = [(path, read_json(path, "Backfill record")) for path in sorted(folder.glob("*.json"))]
    return [(path, data) for path, data in records if data.get("status") != "done"]


def resume(project: Project, progress: bool = False, drive: Drive | None = None) -> Outcome:
    """Continue every unfinished backfill recorded in the state dir, with its recorded parameters."""
    outcome = Outcome("backfill")
    began = time.monotonic()
    for path, record in unfinished_backfills(project):
        (spec,) = project.select([record["pipeline"]])
        window = fixed(record["start_ms"], record["end_ms"], record.get("chunk", spec.chunk))
        _run_locked(project, spec, "backfill", path, record, window, outcome, progress, drive)
    outcome.duration = time.monotonic() - began
    return outcome


def stream(project: Project, names: tuple[str, ...], stop: threading.Event) -> Outcome:
    """Follow the named (or all) pipelines live until ``stop`` is set (``etl stream``), each under its lock."""
    from .streaming import follower_drive

    outcome = Outcome("stream")
    began = time.monotonic()
    specs = project.select(names)
    for spec in specs:
        _require_live(spec)
    drive = follower_drive(stop, project.state_dir)
    threads = [threading.Thread(target=_follow_pipeline, name=f"etl-stream-{spec.name}",
                                args=(project, spec, outcome, drive)) for spec in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            # Never an endless join: SIGTERM may be delivered to any of the process's threads, and Python runs its
            # handler (which sets ``stop``) only once the main thread runs again; a main thread asleep in join()
            # until the pipelines stop would wait for ever.
            thread.join(0.25)
    log.debug("stream shutdown", phase="pipelines joined")
    outcome.duration = time.monotonic() - began
    return outcome


def _follow_pipeline(project: Project, spec: PipelineSpec, outcome: Outcome, drive: Drive) -> None:
    """One pipeline of ``etl stream``, in a thread of its own: what escapes it is the pipeline's failure (and
    the exit code's), not a traceback a thread prints and the process forgets."""
    try:
        _run_locked(project, spec, "stream", _checkpoint_path(project, spec.name), {"pipeline": spec.name},
                    live(spec), outcome, False, drive)
    except Exception as exc:
        log.error("pipeline failed", pipeline=spec.name, error=describe(exc))
        log_traceback(log, "pipeline traceback", exc, pipeline=spec.name)
        outcome.failed[spec.name] = describe(exc)


def _require_live(spec: PipelineSpec) -> None:
    from .plugins import registry

    cls, dataset = registry().get("source", spec.source.plugin), spec.source.dataset
    if spec.source.fallbacks or spec.source.symbol_map:
        raise ConfigError(f"pipelines.{spec.name}.source: fallback and symbol_map apply to etl run and etl "
                          f"backfill; etl stream follows one source under the pipeline's own symbols")
    if dataset not in cls.live:
        live = [f"{name} ({', '.join(registry().get('source', name).live)})" for name in registry().names("source")
                if registry().get("source", name).live]
        raise ConfigError(f"pipelines.{spec.name}.source: {spec.source.plugin} cannot follow {dataset} live; "
                          f"live sources: {', '.join(live) or 'none installed'}")


def _run_locked(project: Project, spec: PipelineSpec, command: str, checkpoint_path: Path,
                header: dict[str, Any], window: Windows, outcome: Outcome, progress: bool,
                drive: Drive | None = None) -> None:
    try:
        with PipelineLock(project.state_dir, spec.name):
            checkpoints = Checkpoints(checkpoint_path, header)
            if header.get("kind") == "backfill":
                checkpoints.update()
            results, sinks_locked = _run_pipeline(project, spec, command, checkpoints, window, progress,
                                                  drive or fetch_units)
    except LockedError as exc:
        log.warning("pipeline locked", pipeline=spec.name, error=str(exc))
        outcome.locked[spec.name] = str(exc)
        return
    outcome.results.extend(results)
    if sinks_locked:
        outcome.locked[spec.name] = sinks_locked
    if header.get("kind") == "backfill" and results and all(result.ok and not result.counters.get("held_rows")
                                                            for result in results):
        checkpoints.update(status="done", finished=iso(now_ms()))


def _sink_slots(project: Project, spec: PipelineSpec, dataset_name: str) -> list[SinkSlot]:
    """The pipeline's sinks, built but not opened: the committer opens them at its first write."""
    from .plugins import registry

    context = PluginContext(spec.name, project.base_dir, project.state_dir)
    return [SinkSlot(registry().get("sink", sink_spec.plugin)(dict(sink_spec.settings), context),
                     sink_spec.table or dataset_name) for sink_spec in spec.sinks]


def _run_pipeline(project: Project, spec: PipelineSpec, command: str, checkpoints: Checkpoints,
                  window: Windows, progress: bool, drive: Drive) -> tuple[list[StreamResult], str | None]:
    """Run the pipeline's streams; their results, and why the pipeline was locked out of its sinks, if it was.

    A locked-out pipeline wrote nothing: only its streams that failed on their own are results (and ledger
    rows), so ``etl status`` keeps the others' last real run.
    """
    from .datasets import dataset

    ledger = Ledger(project.state_dir)
    run_id = ledger.start_run(command, spec.name)
    sources = SourcePool()
    stored_as = sources.get(spec.source).stored_name
    report = Report(spec.name, project.state_dir / "quarantine",
                    lambda stream, gaps: ledger.record_gaps(run_id, spec.name, stored_as, stream.label, gaps))
    began = time.monotonic()
    schema = dataset(spec.source.dataset)
    others: list[Stream] = []  # results that are not units: symbols that left a selector, a failed listing
    if spec.source.selector is not None:
        spec, others = universe.for_run(spec, sources, ledger, run_id, report)
    units = plan_units(project, spec, sources, checkpoints, window)
    bar = Progress(enabled=progress, label=f"{command} {spec.name}",
                   total=sum(max(unit.end - unit.start, 0) for unit in units), streams=len(units))
    # A stream waits for its files as long as it runs, and hands them to a process that asks (``etl.handoff``).
    live_run = command == "stream"
    committer = Committer(_sink_slots(project, spec, schema.name), schema, checkpoints, report, bar,
                          spec.commit_rows, spec.commit_mb * 2**20, math.inf if live_run else spec.sink_wait, live_run)
    try:
        with bar, committer:
            drive(Work(units, sources, committer, report, max(1, min(spec.concurrency, len(units))),
                       spec.rate_budget))
    finally:
        sources.close()
    log.debug("stream shutdown", pipeline=spec.name, phase="sources closed")
    # One result per stream, however many units (a backfill's chunks, heal's gaps) it was cut into.
    results = [report.result(stream) for stream in dict.fromkeys([unit.stream for unit in units] + others)]
    if committer.locked:
        results = [result for result in results if result.error]
    ledger.record_streams(run_id, results)
    ledger.record_units(run_id, spec.name, report.units)
    failed = any(result.error for result in results)
    status = "failed" if failed else ("locked" if committer.locked else "ok")
    ledger.finish_run(run_id, status, results, time.monotonic() - began)
    ledger.close()
    log.debug("stream shutdown", pipeline=spec.name, phase="ledger written")
    return results, committer.locked


def plan_units(project: Project, spec: PipelineSpec, sources: SourcePool, checkpoints: Checkpoints,
               windows: Windows) -> list[WorkUnit]:
    """A unit per span of each stream of the pipeline's source (one, or a backfill's chunks), with its warm-up."""
    source = sources.get(spec.source)
    transforms = build_transforms(spec.name, spec.transforms, project.base_dir, project.state_dir)
    units = []
    for stream in source.streams():
        warmup_rows = chain_warmup(transforms, stream)
        for span in windows(stream, checkpoints, source):
            key = stream.label if span.chunk_start is None else chunk_key(stream, span.chunk_start)
            units.append(WorkUnit(
                spec.name, spec.source, spec.transforms, stream, span.start, span.end, warmup_rows,
                span.start - source.warmup_start(stream, span.start, warmup_rows) if warmup_rows else 0,
                spec.batch_rows, project.base_dir, project.state_dir, _previous(stream, span),
                checkpoints.committed_at_next(key) if span.resumed else (), span.chunk_start, spec.sinks,
                spec.sink_wait))
    return units


def _previous(stream: Stream, span: Span) -> int | None:
    """The bar before the span, for gap detection: known when it continues a checkpoint or a chunk."""
    if not stream.timeframe or not (span.resumed or span.chunk_start):
        return None
    return previous_bar(span.start, stream.timeframe)


def fetch_units(work: Work) -> None:
    """The batch driver: every unit's window, ``workers`` streams at a time, in threads of this process."""
    with ThreadPoolExecutor(max_workers=work.workers) as pool:
        list(pool.map(lambda unit: _run_unit(unit, work), work.units))


def start_unit(unit: WorkUnit, work: Work) -> bool:
    """Record the unit's window in its result; False (and "up to date") when there is nothing to fetch."""
    result = work.report.result(unit.stream)
    result.window_start = min(unit.start, result.window_start if result.window_start is not None else unit.start)
    result.window_end = max(unit.end, result.window_end or unit.end)
    if unit.start >= unit.end:
        result.skipped = "up to date"
        return False
    work.committer.start_stream(unit.stream, unit.start, unit.key)
    return True


def _run_unit(unit: WorkUnit, work: Work) -> None:
    """Fetch and transform one stream in this thread, handing its batches to the committer in order."""
    if not start_unit(unit, work):
        return
    tally, began, rows, error = Tally(), time.monotonic(), 0, None
    try:
        rows = deliver(unit, execute(unit, work.sources, tally), work)
    except Exception as exc:
        log_traceback(log, "stream traceback", exc, pipeline=unit.pipeline, stream=unit.stream.label)
        error = describe(exc)
        work.committer.fail(unit.stream, error)
    finally:
        tally.drain().apply(work.report, unit.stream)
    work.report.unit_ran(UnitRun(unit.key, unit.start, unit.end, "local", time.monotonic() - began, rows, error))
    log.debug("stream fetched", pipeline=unit.pipeline, stream=unit.stream.label,
              window=f"{iso(unit.start)}..{iso(unit.end)}")


def deliver(unit: WorkUnit, batches: Iterable[Batch], work: Work, finished: bool = True) -> int:
    """Hand a unit's batches to the committer in order, each with what was counted while it was made; the rows
    handed over.

    The committer moves the progress bar up to each committed batch; when the source has delivered all it had
    (``finished``), the rest of the window (the files ended in March, the window runs to now) counts as covered.
    A backfill's chunk that finished is then checkpointed at its end, even where its last bars are missing, so
    the stream's checkpoint (the chunks' committed prefix) can pass it; unless its last batch held bars back,
    which a later run must compute again.
    """
    delivered, rows, held = unit.start, 0, False
    for batch in batches:
        batch.tally.apply(work.report, unit.stream)
        if not work.committer.submit(unit.stream, batch, unit.end):
            return rows
        rows += batch.frame.height
        delivered = max(delivered, min(batch.next_ms, unit.end))
        held = batch.held
    if finished and unit.chunk_start is not None and delivered < unit.end and not held:
        import polars as pl

        work.committer.submit(unit.stream, Batch(pl.DataFrame(), unit.end, key=unit.key), unit.end)
    elif finished:
        work.committer.progress.advance(unit.end - delivered, 0)
    return rows
