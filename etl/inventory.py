"""``etl status --stored``: what each sink of each pipeline holds per stream, beside the stream's checkpoint.

A stream's checkpoint says where the next run starts, so after a run it is the bar after the last one stored.
A sink whose last row does not lead there is flagged: rows past the checkpoint (a run stopped between the
sink's commit and the checkpoint's write; the next run writes them again), or a checkpoint past the last row
(rows the checkpoint counts as stored are missing from this sink).
"""

from __future__ import annotations

from typing import Any

from .base import PluginContext, Stream
from .checkpoint import Checkpoints
from .config import PipelineSpec, Project
from .datasets import Dataset, dataset
from .errors import EtlError
from .plugins import registry
from .stored import StoredStream
from .timeframes import iso, next_bar

HEADERS = ("pipeline", "stream", "sink", "table", "rows", "first", "last", "size", "checkpoint", "check")


def stored_rows(project: Project) -> list[tuple[Any, ...]]:
    """A row per stream and sink of every pipeline, in file order."""
    from .ledger import Ledger
    from .universe import last_streams

    ledger = Ledger(project.state_dir)
    try:
        return [row for spec in project.pipelines.values()
                for row in _pipeline_rows(project, spec, dataset(spec.source.dataset), last_streams(spec, ledger))]
    finally:
        ledger.close()


def _pipeline_rows(project: Project, spec: PipelineSpec, schema: Dataset, streams: list[Stream]
                   ) -> list[tuple[Any, ...]]:
    """For each sink of the pipeline, a row per stream (a selector's as the last run chose them), or one row
    saying why the sink could not answer."""
    from .fallback import stored_names

    checkpoints = Checkpoints(project.state_dir / "checkpoints" / f"{spec.name}.json")
    names = stored_names(spec.source)
    outputs = {stream: _stored_stream(spec, project, stream) for stream in streams}
    context = PluginContext(spec.name, project.base_dir, project.state_dir)
    rows: list[tuple[Any, ...]] = []
    for sink_spec in spec.sinks:
        sink = registry().get("sink", sink_spec.plugin)(dict(sink_spec.settings), context)
        where = (spec.name, sink_spec.plugin, sink_spec.table or schema.name)
        try:
            found = sink.stored(schema, where[2])
        except EtlError as exc:
            found, problem = None, f"ERROR: {' '.join(str(exc).split())}"
        else:
            problem = "this sink cannot be read back"
        if found is None:
            rows.append((where[0], "*", *where[1:], "", "", "", "", "", problem))
            continue
        held = {item.key: item for item in found}
        for stream, output in outputs.items():
            item = _merged([held[key] for key in (_key(name, output, schema.stream_key) for name in names)
                            if key in held])
            rows.append((where[0], stream.label, *where[1:], *_shown(item), _checkpoint(checkpoints, stream),
                         verdict(item, checkpoints.next(stream.label), output.timeframe)))
    return rows


def _stored_stream(spec: PipelineSpec, project: Project, stream: Stream) -> Stream:
    """The stream as the sinks store it: after the transforms (a resample changes its timeframe)."""
    from .unit import build_transforms

    for transform in build_transforms(spec.name, spec.transforms, project.base_dir, project.state_dir):
        stream = transform.output_stream(stream)
    return stream


def _key(source: str, stream: Stream, columns: tuple[str, ...]) -> tuple[str | None, ...]:
    values = {"source": source, "symbol": stream.symbol, "timeframe": stream.timeframe}
    return tuple(values[column] for column in columns)


def _merged(items: list[StoredStream]) -> StoredStream | None:
    """One stream's rows under each source it was stored as (its fallbacks deliver some), as one."""
    if len(items) < 2:
        return items[0] if items else None
    sizes = [item.bytes for item in items]
    return StoredStream(items[0].key, sum(item.rows for item in items), min(item.first_ms for item in items),
                        max(item.last_ms for item in items), None if None in sizes else sum(sizes))


def _shown(item: StoredStream | None) -> tuple[Any, ...]:
    if item is None:
        return 0, "", "", ""
    return item.rows, iso(item.first_ms), iso(item.last_ms), size(item.bytes)


def _checkpoint(checkpoints: Checkpoints, stream: Stream) -> str:
    next_ms = checkpoints.next(stream.label)
    return iso(next_ms) if next_ms is not None else "-"


def verdict(item: StoredStream | None, next_ms: int | None, timeframe: str | None) -> str:
    """``ok``, or what does not match between the sink's last row and the checkpoint (``MISMATCH: ...``)."""
    if item is None:
        return "nothing stored" if next_ms is None else "MISMATCH: the checkpoint has rows this sink lacks"
    if next_ms is None:
        return "no checkpoint (backfilled only)"
    leads_to = next_bar(item.last_ms, timeframe) if timeframe else item.last_ms
    if leads_to == next_ms:
        return "ok"
    if leads_to > next_ms:
        return "MISMATCH: rows past the checkpoint (the next run writes them again)"
    return "MISMATCH: the checkpoint is past the last row stored"


def size(count: int | None) -> str:
    """``12.5 KB``: bytes for people; ``-`` when the store cannot tell."""
    if count is None:
        return "-"
    if count < 1024:
        return f"{count} B"
    value = count / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
