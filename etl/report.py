"""What a run did, per stream: rows, counters from transforms, quarantined rows, errors."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .gaps import Gap

if TYPE_CHECKING:
    import polars as pl

    from .stream import Stream


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

    @property
    def ok(self) -> bool:
        return self.error is None


_current: ContextVar[Report | None] = ContextVar("etl_report", default=None)


def current_report() -> Report | None:
    """The report of the stream being fetched in this thread, for sources that count what they drop."""
    return _current.get()


def use_report(report: Report | None) -> None:
    _current.set(report)


class Report:
    """Collects results of one pipeline run from its stream threads."""

    def __init__(self, pipeline: str, quarantine_dir: Path):
        self.pipeline = pipeline
        self.quarantine_dir = quarantine_dir
        self.streams: dict[Stream, StreamResult] = {}
        self._lock = threading.Lock()

    def result(self, stream: Stream) -> StreamResult:
        with self._lock:
            return self.streams.setdefault(stream, StreamResult(self.pipeline, stream))

    def count(self, stream: Stream, metric: str, n: int) -> None:
        result = self.result(stream)
        with self._lock:
            result.counters[metric] = result.counters.get(metric, 0) + n

    def gaps(self, stream: Stream, gaps: list[Gap]) -> None:
        result = self.result(stream)
        with self._lock:
            result.gaps.extend(gaps)
            result.counters["gaps"] = result.counters.get("gaps", 0) + len(gaps)
            result.counters["missing_bars"] = result.counters.get("missing_bars", 0) + sum(g.bars for g in gaps)

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

