"""``etl.read``: what a pipeline stored, as a polars LazyFrame, for research without SQL against each sink.

The rows come from the pipeline's first sink that can be read back (``Sink.read``: DuckDB, Parquet, SQLite and
PostgreSQL can), restricted to the pipeline's source and the symbols and time range asked for, with the
dataset's column types and ``ts`` as UTC milliseconds whatever the store keeps (SQLite keeps ISO text).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from .base import Sink
    from .schemas import Dataset
    from .stored import Selection

Time = str | date | datetime | int | None


def read(file: str | Path, pipeline: str, symbols: str | Iterable[str] | None = None, start: Time = None,
         end: Time = None, columns: Iterable[str] | None = None) -> pl.LazyFrame:
    """The rows ``pipeline`` of the pipeline file ``file`` stored: all symbols, or ``symbols``; ``ts`` in
    ``[start, end)`` (ISO text, dates, datetimes or epoch ms, UTC); all columns, or ``columns``."""
    from . import config
    from .base import PluginContext
    from .datasets import dataset
    from .errors import ConfigError
    from .fallback import stored_names
    from .plugins import registry
    from .stored import Selection

    project = config.load(file)
    (spec,) = project.select([pipeline])
    schema = dataset(spec.source.dataset)
    chosen = (symbols,) if isinstance(symbols, str) else tuple(symbols) if symbols is not None else None
    selections = [Selection(name, chosen, _ms(start, "start"), _ms(end, "end")) for name in stored_names(spec.source)]
    context = PluginContext(spec.name, project.base_dir, project.state_dir)
    for sink_spec in spec.sinks:
        sink = registry().get("sink", sink_spec.plugin)(dict(sink_spec.settings), context)
        typed = _of_sources(sink, schema, sink_spec.table or schema.name, selections)
        if typed is not None:
            return typed.select(list(columns)) if columns is not None else typed
    plugins = ", ".join(sink.plugin for sink in spec.sinks)
    raise ConfigError(f"pipelines.{pipeline}: none of its sinks ({plugins}) can be read back")


def _of_sources(sink: Sink, schema: Dataset, table: str, selections: list[Selection]) -> pl.LazyFrame | None:
    """The rows of each selection (one per source the pipeline's rows may carry: fallbacks deliver some), in
    one frame sorted by stream and ``ts``."""
    import polars as pl

    parts = [stored_rows(sink, schema, table, selection) for selection in selections]
    if parts[0] is None or len(parts) == 1:
        return parts[0]
    return pl.concat(parts, how="diagonal_relaxed").sort([*schema.stream_key, "ts"])


def stored_rows(sink: Sink, schema: Dataset, table: str, selection: Selection) -> pl.LazyFrame | None:
    """What ``sink`` holds of ``selection`` in ``table``, in the dataset's types and sorted by stream and ``ts``;
    None when the sink cannot be read back. ``etl.read`` and the ``enrich`` transform read through it."""
    frame = sink.read(schema, table, selection)
    return None if frame is None else _typed(frame, schema).sort([*schema.stream_key, "ts"])


def _typed(frame: pl.LazyFrame, schema: Dataset) -> pl.LazyFrame:
    """The dataset's columns first, in its types (``ts`` a UTC datetime in ms), then the others as stored."""
    import polars as pl

    from .datasets import empty_frame, polars_type

    have = frame.collect_schema()
    if not have:
        return empty_frame(schema).lazy()
    typed = []
    for name, kind in schema.columns:
        if name not in have:
            typed.append(pl.lit(None, polars_type(kind)).alias(name))
        elif kind == "ts":
            column = pl.col(name)
            if have[name] == pl.Null:  # no rows, and a store that does not type an empty result (PostgreSQL)
                column = column.cast(pl.Datetime("ms", "UTC"))
            elif have[name] == pl.String:
                column = column.str.to_datetime(time_unit="ms", time_zone="UTC")
            else:
                column = column.dt.convert_time_zone("UTC").dt.cast_time_unit("ms")
            typed.append(column.alias(name))
        else:
            typed.append(pl.col(name).cast(polars_type(kind)))
    return frame.select(*typed, *[pl.col(name) for name in have if name not in schema.column_names])


def _ms(value: Time, name: str) -> int | None:
    from .config import _time

    return _time(value, name) if not isinstance(value, int) else value
