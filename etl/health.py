"""How each stream is doing, for ``etl status``, ``etl status --check`` and ``--json``, alerts and metrics.

A stream has a problem when it lags more than its ``max_lag`` behind now (or behind the pipeline's ``end``),
when its last run failed, or when it has open gaps that ended within ``recent_gaps`` (older open gaps are
history ``etl heal`` has already been asked about, or will be). Lag is counted from the checkpoint to now; for
a source with a trading calendar, from the first bar the calendar expected after the checkpoint, so a weekend
or a holiday is no lag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import Source, Stream
from .checkpoint import Checkpoints
from .config import PipelineSpec, Project
from .ledger import Ledger
from .timeframes import HOUR, iso, now_ms, parse_duration, parse_time, timeframe_ms

DEFAULT_BARS = 3  # the default max_lag, in bars of the stream's timeframe


@dataclass
class StreamHealth:
    """One stream's checkpoint, lag, last run and gaps, and the problems they make."""

    pipeline: str
    stream: str
    next_ms: int | None
    lag_ms: int | None
    max_lag_ms: int
    last_run: dict[str, Any]
    open_gaps: list[dict[str, Any]] = field(default_factory=list)
    confirmed_gaps: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (cause, message)
    live: dict[str, Any] | None = None  # followed by etl stream: its process and connection (etl.liveboard)

    def as_json(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline, "stream": self.stream,
            "checkpoint": iso(self.next_ms) if self.next_ms is not None else None,
            "lag_s": self.lag_ms // 1000 if self.lag_ms is not None else None, "max_lag_s": self.max_lag_ms // 1000,
            "last_run": {key: self.last_run.get(key) for key in ("status", "finished", "rows", "error")},
            "open_gaps": len(self.open_gaps), "open_missing_bars": sum(gap["bars"] for gap in self.open_gaps),
            "confirmed_gaps": self.confirmed_gaps,
            "problems": [{"cause": cause, "message": message} for cause, message in self.problems],
            **({"live": self.live} if self.live is not None else {}),
        }


def project_health(project: Project, names: tuple[str, ...] = ()) -> list[StreamHealth]:
    """Every stream of the named (or all) pipelines, in file order (a selector's as the last run chose them);
    reads the state dir, fetches nothing."""
    from .gapbook import gap_states
    from .liveboard import read_board, stream_live
    from .plugins import registry
    from .universe import last_streams

    recent = parse_duration(project.settings.get("recent_gaps") or "1d")
    ledger = Ledger(project.state_dir)
    found = []
    try:
        for spec in project.select(names):
            checkpoints = Checkpoints(project.state_dir / "checkpoints" / f"{spec.name}.json")
            last = ledger.last_stream_runs(spec.name)
            gaps = gap_states(ledger, spec.name)
            source = registry().get("source", spec.source.plugin)(spec.source)
            board = read_board(project.state_dir, spec.name)
            for stream in last_streams(spec, ledger):
                health = _stream_health(spec, source, stream, checkpoints.next(stream.label),
                                        last.get(stream.label, {}), [g for g in gaps if g["stream"] == stream.label])
                health.problems = _problems(health, recent)
                health.live = stream_live(board, stream.label, now_ms()) if board else None
                found.append(health)
    finally:
        ledger.close()
    return found


def _stream_health(spec: PipelineSpec, source: Source, stream: Stream, next_ms: int | None,
                   last_run: dict[str, Any], gaps: list[dict[str, Any]]) -> StreamHealth:
    return StreamHealth(
        spec.name, stream.label, next_ms, lag(spec, source, stream, next_ms), max_lag(spec, stream), last_run,
        [gap for gap in gaps if gap["state"] == "open"], sum(1 for gap in gaps if gap["state"] == "confirmed"))


def max_lag(spec: PipelineSpec, stream: Stream) -> int:
    """The stream's ``max_lag`` in milliseconds: the pipeline's or ``[settings]``', else three bars."""
    if spec.max_lag:
        return parse_duration(spec.max_lag)
    return DEFAULT_BARS * (timeframe_ms(stream.timeframe) if stream.timeframe else HOUR)


def lag(spec: PipelineSpec, source: Source, stream: Stream, next_ms: int | None) -> int | None:
    """Milliseconds from the first bar not stored to now (or the pipeline's ``end``); None before any run."""
    if next_ms is None:
        return None
    until = min(now_ms(), spec.source.end) if spec.source.end is not None else now_ms()
    if until <= next_ms:
        return 0
    expected = source.trading_bars(stream, next_ms, until) if stream.timeframe else None
    if expected is None:
        return until - next_ms
    return until - int(expected.min().timestamp() * 1000) if len(expected) else 0


def _problems(health: StreamHealth, recent_ms: int) -> list[tuple[str, str]]:
    problems = []
    if health.lag_ms is None:
        problems.append(("stale", "no checkpoint: etl run has stored nothing yet"))
    elif health.lag_ms > health.max_lag_ms:
        problems.append(("stale", f"{human(health.lag_ms)} behind, max_lag {human(health.max_lag_ms)}"))
    if health.last_run.get("status") == "failed":
        problems.append(("failed", " ".join(str(health.last_run.get("error")).split())))
    horizon = now_ms() - recent_ms
    recent = [gap for gap in health.open_gaps if parse_time(gap["end"]) >= horizon]
    if recent:
        bars = sum(gap["bars"] for gap in recent)
        problems.append(("gaps", f"{len(recent)} open gaps ({bars} missing bars) since {recent[0]['start']}"))
    return problems


def human(ms: int) -> str:
    """``1.5h``, ``3.0d``, ``45s``: a lag for people."""
    seconds = max(0, ms // 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds}s"
