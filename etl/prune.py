"""``etl prune``: remove one symbol from a pipeline, everywhere the project keeps it.

Under the pipeline's lock, in this order: the rows of every sink (each sink deletes in one transaction, or per
file for the lake), then the checkpoint entries of the symbol's streams (left alone with ``before``: the
stream still continues from there), its quarantined rows and its recorded gaps. Every step deletes what is
there and nothing else, so a prune that was killed finishes when run again with the same arguments; a sink
that cannot delete rows makes the prune refuse before anything is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import PluginContext, Sink
from .checkpoint import Checkpoints
from .config import PipelineSpec, Project
from .errors import ConfigError
from .lock import PipelineLock
from .plugins import registry
from .timeframes import TIMEFRAMES, iso


@dataclass
class Pruned:
    """What a prune removed: rows per (sink, table), checkpoint entries, quarantine files and gap records."""

    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    checkpoint_entries: int = 0
    quarantine_files: int = 0
    gaps: int = 0


def prune(project: Project, pipeline: str, symbol: str, before: int | None = None) -> Pruned:
    """Remove ``symbol``'s rows (those before ``before`` when given) from every sink of ``pipeline``, and its
    checkpoint entries, quarantine and gaps."""
    from . import faults
    from .datasets import dataset
    from .fallback import stored_names
    from .ledger import Ledger

    (spec,) = project.select([pipeline])
    schema = dataset(spec.source.dataset)
    context = PluginContext(spec.name, project.base_dir, project.state_dir)
    sinks = [(registry().get("sink", item.plugin)(dict(item.settings), context), item.table or schema.name)
             for item in spec.sinks]
    unable = [sink.name for sink, _ in sinks if type(sink).prune is Sink.prune]
    if unable:
        raise ConfigError(f"pipelines.{pipeline}: sink {', '.join(unable)} cannot remove rows, so nothing was pruned")
    source = registry().get("source", spec.source.plugin)(spec.source)
    matches = [{column: value for column, value in (("source", name), ("symbol", symbol))
                if column in schema.stream_key} for name in stored_names(spec.source)]  # the fallbacks' rows too
    pruned = Pruned()
    with PipelineLock(project.state_dir, pipeline):
        for sink, table in sinks:
            pruned.rows[(sink.name, table)] = sum(sink.prune(schema, table, match, before) for match in matches)
            faults.point("between_sinks")
        checkpoints = Checkpoints(project.state_dir / "checkpoints" / f"{pipeline}.json")
        labels = [label for label in checkpoints.data["streams"] if _of_symbol(label, schema.name, symbol)]
        if before is None and labels:
            checkpoints.update(streams={label: entry for label, entry in checkpoints.data["streams"].items()
                                        if label not in labels})
            pruned.checkpoint_entries = len(labels)
        streams = sorted({label.split("@")[0] for label in labels} |
                         {stream.label for stream in source.streams() if stream.symbol == symbol})
        pruned.quarantine_files = _prune_quarantine(project, spec, streams, before)
        ledger = Ledger(project.state_dir)
        pruned.gaps = ledger.forget_gaps(pipeline, streams, iso(before) if before is not None else None)
        ledger.close()
    return pruned


def _of_symbol(label: str, dataset_name: str, symbol: str) -> bool:
    """Whether a checkpoint entry (``ohlcv/BTC/USDT/1h``, ``...@2024-01-01T00:00:00Z`` for a chunk) is of
    ``symbol``: a symbol may hold a slash, so what follows it must be a timeframe, or nothing."""
    stream = label.split("@")[0]
    prefix = f"{dataset_name}/{symbol}"
    return stream == prefix or (stream.startswith(prefix + "/") and stream[len(prefix) + 1:] in TIMEFRAMES)


def _prune_quarantine(project: Project, spec: PipelineSpec, streams: list[str], before: int | None) -> int:
    """Remove the quarantine files of ``streams`` (named ``<label>_<transform>_<first>_<last>``), only those
    whose rows are all before ``before`` when given; how many."""
    import polars as pl

    from .timeframes import from_ms

    prefixes = tuple(f"{label.replace('/', '_')}_{transform.plugin}_" for label in streams
                     for transform in spec.transforms)
    removed = 0
    for file in sorted((project.state_dir / "quarantine" / spec.name).glob("*/*.parquet")):
        if not prefixes or not file.name.startswith(prefixes):
            continue
        if before is None or pl.read_parquet(file, columns=["ts"])["ts"].max() < from_ms(before):
            file.unlink()
            removed += 1
    return removed
