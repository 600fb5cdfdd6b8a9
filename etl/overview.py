"""Read-only views of a project for ``etl validate`` and ``etl status``: nothing fetched, nothing written."""

from __future__ import annotations

from typing import Any

from .config import Project
from .errors import ConfigError
from .options import mask_secrets
from .plugins import registry
from .timeframes import iso


def check_project(project: Project) -> int:
    """Check every source's local inputs and count the streams (``config.load`` already ran the option checks)."""
    streams = 0
    for spec in project.pipelines.values():
        where = f"pipelines.{spec.name}.source"
        for index, config in enumerate(spec.source.fallbacks):
            _check_inputs(project, config, f"{where}.fallback[{index}]")
        streams += len(_check_inputs(project, spec.source, where).streams())
    return streams


def _check_inputs(project: Project, config: Any, where: str) -> Any:
    """The source of ``config``, once its local inputs are found to be there."""
    cls = registry().get("source", config.plugin)
    source = cls(config)
    try:
        source.check_inputs()
    except ConfigError as exc:
        message = mask_secrets(str(exc), cls.options, config.settings)
        raise ConfigError(f"{project.path}: {message} ({where})") from None
    return source


def status_rows(project: Project) -> list[tuple[Any, ...]]:
    """The ``etl status`` table: a row per stream."""
    from .health import human, project_health

    rows = []
    for health in project_health(project):
        run = health.last_run
        result = run.get("status", "never run")
        if run.get("error"):
            result = f"{result}: {run['error']}"
        rows.append((health.pipeline, health.stream, iso(health.next_ms) if health.next_ms is not None else "-",
                     human(health.lag_ms) if health.lag_ms is not None else "", len(health.open_gaps),
                     sum(gap["bars"] for gap in health.open_gaps), run.get("finished") or "", run.get("rows", ""),
                     result))
    return rows


def live_rows(project: Project) -> list[tuple[Any, ...]]:
    """A row per connection of each pipeline ``etl stream`` follows, or last followed (``etl.liveboard``)."""
    from .liveboard import connection_rows, read_board
    from .timeframes import now_ms

    boards = [read_board(project.state_dir, name) for name in project.pipelines]
    return [row for board in boards if board for row in connection_rows(board, now_ms())]


def gap_rows(project: Project, state: str) -> list[tuple[Any, ...]]:
    """The gaps in ``state`` (open, confirmed), each with the date it was confirmed when it was."""
    from .gapbook import gap_states
    from .ledger import Ledger

    ledger = Ledger(project.state_dir)
    rows = [
        (name, gap["stream"], gap["start"], gap["end"], gap["bars"], *([gap["checked"]] if gap["checked"] else []))
        for name in project.pipelines
        for gap in gap_states(ledger, name)
        if gap["state"] == state
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
