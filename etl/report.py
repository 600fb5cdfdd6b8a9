"""What a run did, per stream: rows, counters from transforms, quarantined rows, errors."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .gaps import Gap

if TYPE_CHECKING:
    from collections.abc import Callable

    import polars as pl

    from .stream import Stream


@dataclass(frozen=True)
class Fallback:
    """A window that ``source`` failed for good and ``fallback`` fetched instead (``etl.fallback``): from
    ``start`` (where the failed source's rows stopped) to ``end``, and the failure that caused it."""

    start: int
    end: int
    source: str
    fallback: str
    reason: str


@dataclass
class StreamResult:
    pipeline: str
    stream: Stream
    window_start: int | None = None
    window_end: int | None = None
    rows: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    gaps: list[Gap] = field(default_factory=list)
    duration: float = 0.0
    skipped: str | None = None
    fallbacks: list[Fallback] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class UnitRun:
    """Where one unit of work ran and how long it took, for the ledger: ``worker`` is a Dask worker's
    address, or ``local`` for a thread of the run's own process; ``rows`` are the rows it handed over."""

    unit: str
    start: int
    end: int
    worker: str
    seconds: float
    rows: int
    error: str | None = None


@dataclass
class Tally:
    """What one unit of work did besides its rows: counters, gaps and quarantined rows, kept as values.

    A unit running on a Dask worker cannot touch the driver's report or state dir, so what it counts travels
    back with its batches (``Batch.tally``) and the driver applies it (``apply``) when it takes each batch: the
    same code path whether the unit ran in a thread here or on a worker there.
    """

    counters: dict[str, int] = field(default_factory=dict)
    found_gaps: list[Gap] = field(default_factory=list)
    quarantined: list[tuple[str, pl.DataFrame]] = field(default_factory=list)
    fallbacks: list[Fallback] = field(default_factory=list)

    def count(self, stream: Stream, metric: str, n: int) -> None:
        if n:
            self.counters[metric] = self.counters.get(metric, 0) + n

    def gaps(self, stream: Stream, gaps: list[Gap]) -> None:
        self.found_gaps.extend(gaps)

    def quarantine(self, stream: Stream, rows: pl.DataFrame, transform: str) -> None:
        self.quarantined.append((transform, rows))

    def fell_back(self, stream: Stream, fallback: Fallback) -> None:
        self.fallbacks.append(fallback)
        self.count(stream, "fell_back", 1)

    def drain(self) -> Tally:
        """What was counted since the last drain; the tally starts again from nothing."""
        taken = Tally(self.counters, self.found_gaps, self.quarantined, self.fallbacks)
        self.counters, self.found_gaps, self.quarantined, self.fallbacks = {}, [], [], []
        return taken

    def apply(self, report: Report, stream: Stream) -> None:
        for metric, n in self.counters.items():
            report.count(stream, metric, n)
        if self.found_gaps:
            report.gaps(stream, self.found_gaps)
        for transform, rows in self.quarantined:
            report.quarantine(stream, rows, transform)
        if self.fallbacks:
            report.fell_back(stream, self.fallbacks)


_current: ContextVar[Tally | None] = ContextVar("etl_tally", default=None)


def current_tally() -> Tally | None:
    """The tally of the unit running in this thread, for sources that count what they drop (``Source.count``);
    a context variable so that a plugin's ``fetch`` keeps its plain signature."""
    return _current.get()


def count_into(tally: Tally) -> None:
    _current.set(tally)


class Report:
    """Collects results of one pipeline run from its stream threads."""

    def __init__(self, pipeline: str, quarantine_dir: Path,
                 record_gaps: Callable[[Stream, list[Gap]], None] | None = None):
        self.pipeline = pipeline
        self.quarantine_dir = quarantine_dir
        self.record_gaps = record_gaps  # the ledger's, for a run: gaps are recorded the moment they are found
        self.streams: dict[Stream, StreamResult] = {}
        self.units: list[UnitRun] = []
        self._lock = threading.Lock()

    def unit_ran(self, run: UnitRun) -> None:
        with self._lock:
            self.units.append(run)

    def result(self, stream: Stream) -> StreamResult:
        with self._lock:
            return self.streams.setdefault(stream, StreamResult(self.pipeline, stream))

    def count(self, stream: Stream, metric: str, n: int) -> None:
        result = self.result(stream)
        with self._lock:
            result.counters[metric] = result.counters.get(metric, 0) + n

    def gaps(self, stream: Stream, gaps: list[Gap]) -> None:
        result = self.result(stream)
        if self.record_gaps is not None:
            self.record_gaps(stream, gaps)
        with self._lock:
            result.gaps.extend(gaps)
            result.counters["gaps"] = result.counters.get("gaps", 0) + len(gaps)
            result.counters["missing_bars"] = result.counters.get("missing_bars", 0) + sum(g.bars for g in gaps)

    def fell_back(self, stream: Stream, fallbacks: list[Fallback]) -> None:
        result = self.result(stream)
        with self._lock:
            result.fallbacks.extend(fallbacks)

    def quarantine(self, stream: Stream, rows: pl.DataFrame, transform: str) -> None:
        """Write rows to ``quarantine/<pipeline>/<dataset>/`` as Parquet, named by stream and time span.

        The name is derived from the rows, so a batch replayed after a crash replaces its own file
        instead of adding a second copy.
        """
        import polars as pl

        from .checkpoint import atomic_write_bytes

        first, last = rows["ts"].min(), rows["ts"].max()
        name = "_".join(
            [stream.label.replace("/", "_"), transform, f"{first:%Y%m%dT%H%M%S}", f"{last:%Y%m%dT%H%M%S}"]
        )
        target = self.quarantine_dir / self.pipeline / stream.dataset / f"{_safe(name)}.parquet"
        rows = rows.with_columns(pl.lit(transform).alias("transform"))
        atomic_write_bytes(target, _parquet_bytes(rows))
        self.count(stream, "quarantined", rows.height)


def _safe(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "-" for char in name)


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()

