"""The unit of work: one stream over one window, from plain specs to transformed batches.

A ``WorkUnit`` holds only plain, picklable data (specs, names, integers), so an executor on another
machine can run ``execute`` unchanged; committing the batches it yields is the runner's job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import BatchContext, PluginContext, Source, SourceConfig, Stream, Transform
from .config import PluginSpec
from .errors import SourceError

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class WorkUnit:
    pipeline: str
    source: SourceConfig
    transforms: tuple[PluginSpec, ...]
    stream: Stream
    start: int
    end: int
    warmup_rows: int
    warmup_ms: int
    batch_rows: int
    base_dir: Path
    state_dir: Path
    previous_ts: int | None = None


@dataclass
class Batch:
    """Rows ready for the sinks, and the checkpoint to record once every sink has committed them."""

    frame: pl.DataFrame
    next_ms: int


_sources: dict[Any, Source] = {}
_sources_lock = threading.Lock()


def source_for(config: SourceConfig) -> Source:
    """One source object per configuration and process, so market metadata loads once per run."""
    from .plugins import registry

    key = (config.plugin, repr(config))
    with _sources_lock:
        if key not in _sources:
            _sources[key] = registry().get("source", config.plugin)(config)
        return _sources[key]


def close_sources() -> None:
    with _sources_lock:
        for source in _sources.values():
            source.close()
        _sources.clear()


def build_transforms(pipeline: str, specs: tuple[PluginSpec, ...], base_dir: Path, state_dir: Path) -> list[Transform]:
    from .plugins import registry

    context = PluginContext(pipeline, base_dir, state_dir)
    return [registry().get("transform", spec.plugin)(spec.settings, context) for spec in specs]


def chain_warmup(transforms: list[Transform], stream: Stream) -> int:
    """Rows of the source stream to read before the window so every transform of the chain is exact."""
    streams = []
    for transform in transforms:
        streams.append(stream)
        stream = transform.output_stream(stream)
    rows = 0
    for transform, seen in zip(reversed(transforms), reversed(streams), strict=True):
        rows = transform.input_rows(seen, rows)
    return rows


def execute(unit: WorkUnit, report: Any) -> Iterator[Batch]:
    """Fetch the unit's window (plus warm-up), transform it, and yield batches of new rows in time order."""
    import polars as pl

    from .datasets import conform, dataset
    from .gaps import find_gaps, on_calendar
    from .report import use_report
    from .timeframes import from_ms, next_bar, now_ms, ts_literal

    use_report(report)
    source = source_for(unit.source)
    transforms = build_transforms(unit.pipeline, unit.transforms, unit.base_dir, unit.state_dir)
    schema = dataset(unit.stream.dataset)
    fetch_start = unit.start - unit.warmup_ms
    window = (pl.col("ts") >= ts_literal(fetch_start)) & (pl.col("ts") < ts_literal(unit.end))
    context: pl.DataFrame | None = None
    new_from = unit.start
    last_seen = unit.previous_ts
    pending: list[pl.DataFrame] = []
    pending_rows = 0

    def record_gaps(raw: pl.DataFrame) -> None:
        nonlocal last_seen
        if not unit.stream.timeframe:
            return
        loaded = raw["ts"]
        if loaded.min() < from_ms(unit.start):
            loaded = loaded.filter(loaded >= from_ms(unit.start))
        if not loaded.len():
            return
        loaded = loaded.dt.epoch("ms")
        gaps = on_calendar(find_gaps(loaded, last_seen, unit.stream.timeframe), source, unit.stream)
        if gaps:
            report.gaps(unit.stream, gaps)
        last_seen = max(loaded.max(), last_seen or 0)

    def flush() -> Batch | None:
        nonlocal context, new_from, pending, pending_rows
        raw = pl.concat(pending, how="diagonal_relaxed")
        if not raw["ts"].is_sorted():
            raw = raw.sort("ts", maintain_order=True)
        pending, pending_rows = [], 0
        record_gaps(raw)
        last_ts = int(raw["ts"].max().timestamp() * 1000)
        following = next_bar(last_ts, unit.stream.timeframe) if unit.stream.timeframe else last_ts + 1
        frame = raw if context is None else pl.concat([context, raw], how="diagonal_relaxed")
        if unit.warmup_rows:
            context = frame.filter(pl.col("ts") <= ts_literal(last_ts)).tail(unit.warmup_rows)
        batch_context = BatchContext(unit.stream, new_from, report)
        for transform in transforms:
            frame = transform.apply(frame, batch_context)
        out = batch_context.new_rows(frame)
        new_from = max(new_from, following)
        if last_ts < unit.start:
            return None
        return Batch(drop_repeated_keys(out), following)

    def drop_repeated_keys(out: pl.DataFrame) -> pl.DataFrame:
        """Sinks rely on unique keys per batch; keep the last row of a repeated key and count it."""
        varying = [column for column in schema.key if column not in schema.stream_key]
        keys = out.select(varying)
        if not keys.is_duplicated().any():
            return out
        unique = out.unique(subset=varying, keep="last", maintain_order=True)
        report.count(unit.stream, "duplicates_dropped", out.height - unique.height)
        return unique

    for frame in source.fetch(unit.stream, fetch_start, unit.end):
        if not frame.height:
            continue
        frame = conform(frame, schema, unit.stream, unit.source.plugin)
        ts = frame["ts"]
        if ts.null_count():
            raise SourceError(f"{unit.source.plugin} returned rows without a timestamp for {unit.stream.label}")
        now, first, last = from_ms(now_ms()), ts.min(), ts.max()
        if last > now:
            report.count(unit.stream, "future_rows_dropped", int((ts > now).sum()))
        if first < from_ms(fetch_start) or last >= from_ms(unit.end):
            frame = frame.filter(window)
            if not frame.height:
                continue
        pending.append(frame)
        pending_rows += frame.height
        if pending_rows >= unit.batch_rows:
            batch = flush()
            if batch is not None:
                yield batch
    if pending_rows:
        batch = flush()
        if batch is not None:
            yield batch
