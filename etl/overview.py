"""Read-only views of a project for ``etl validate`` and ``etl status``: nothing fetched, nothing written."""

from __future__ import annotations

from typing import Any

from . import universe
from .checkpoint import Checkpoints
from .config import Project
from .errors import ConfigError
from .options import mask_secrets
from .plugins import registry
from .timeframes import iso, now_ms


def check_project(project: Project) -> int:
    """Check every source's local inputs and count the streams (``config.load`` already ran the option checks)."""
    streams = 0
    for spec in project.pipelines.values():
        cls = registry().get("source", spec.source.plugin)
        source = cls(spec.source)
        try:
            source.check_inputs()
        except ConfigError as exc:
            message = mask_secrets(str(exc), cls.options, spec.source.settings)
            raise ConfigError(f"{project.path}: {message} (pipelines.{spec.name}.source)") from None
        streams += len(source.streams())
    return streams


def _lag(next_ms: int | None) -> str:
    if next_ms is None:
        return ""
    seconds = max(0, (now_ms() - next_ms) // 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds}s"


def status_rows(project: Project) -> list[tuple[Any, ...]]:
    from .ledger import Ledger

    ledger = Ledger(project.state_dir)
    rows = []
    for spec in project.pipelines.values():
        checkpoints = Checkpoints(project.state_dir / "checkpoints" / f"{spec.name}.json")
        last = ledger.last_stream_runs(spec.name)
        gaps: dict[str, list[int]] = {}
        for gap in ledger.gaps(spec.name):
            gaps.setdefault(gap["stream"], []).append(gap["bars"])
        for stream in universe.last_streams(spec, ledger):
            next_ms = checkpoints.next(stream.label)
            run = last.get(stream.label, {})
            result = run.get("status", "never run")
            if run.get("error"):
                result = f"{result}: {run['error']}"
            missing = gaps.get(stream.label, [])
            rows.append((spec.name, stream.label, iso(next_ms) if next_ms is not None else "-", _lag(next_ms),
                         len(missing), sum(missing), run.get("finished") or "", run.get("rows", ""), result))
    ledger.close()
    return rows


def gap_rows(project: Project) -> list[tuple[Any, ...]]:
    from .ledger import Ledger

    ledger = Ledger(project.state_dir)
    rows = [
        (name, gap["stream"], gap["start"], gap["end"], gap["bars"])
        for name in project.pipelines
        for gap in ledger.gaps(name)
    ]
    ledger.close()
    return rows


def unit_rows(project: Project) -> list[tuple[Any, ...]]:
    """Each pipeline's units of work in its last run: where each ran (a Dask worker, or ``local``), for how
    long, and the rows it handed over; what says whether a cluster spread the work, and which unit was slow."""
    from .ledger import Ledger

    ledger = Ledger(project.state_dir)
    rows = [
        (name, unit["unit"], f"{unit['window_start']}..{unit['window_end']}", unit["worker"],
         f"{unit['seconds']:.3f}", unit["rows"], unit["status"] + (f": {unit['error']}" if unit["error"] else ""))
        for name in project.pipelines
        for unit in ledger.last_run_units(name)
    ]
    ledger.close()
    return rows
