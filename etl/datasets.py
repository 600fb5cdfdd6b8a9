"""Datasets: looking one up by name (built-in or from a plugin) and conforming batches to its schema.

The schemas themselves are plain data in ``etl.schemas`` (re-exported here), which the plugin registry reads
without importing this module; polars is imported only when a batch is actually conformed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import SourceError
from .schemas import BUILTIN_DATASETS, STREAM_COLUMNS, Columns, Dataset

if TYPE_CHECKING:
    import polars as pl

    from .stream import Stream

__all__ = ["BUILTIN_DATASETS", "STREAM_COLUMNS", "Columns", "Dataset", "conform", "dataset", "empty_frame",
           "polars_type"]

def polars_type(kind: str) -> pl.DataType:
    import polars as pl

    return {
        "str": pl.String(),
        "ts": pl.Datetime("ms", "UTC"),
        "f64": pl.Float64(),
        "i64": pl.Int64(),
    }[kind]


def conform(
    frame: pl.DataFrame, dataset: Dataset, stream: Stream, source_name: str, step_ms: int | None = None
) -> pl.DataFrame:
    """Bring a source's batch into the dataset schema.

    The stream columns are set from the stream itself (the symbol is stored as the pipeline wrote it),
    ``ts`` may arrive as epoch milliseconds or any datetime, required columns are cast to their types
    and come first, extra columns follow in the order the source gave them.
    """
    import polars as pl

    missing = [
        name for name in dataset.column_names if name not in frame.columns and name not in _set_by_core(dataset)
    ]
    if missing:
        raise SourceError(
            f"{source_name} returned a {dataset.name} batch for {stream.label} without column(s) "
            f"{', '.join(missing)}; columns were: {', '.join(frame.columns)}"
        )
    fixed = {"source": source_name, "symbol": stream.symbol}
    if dataset.has_timeframe:
        fixed["timeframe"] = stream.timeframe
    exprs: list[pl.Expr] = []
    for name, kind in dataset.columns:
        if name in fixed:
            exprs.append(pl.lit(fixed[name], pl.String).alias(name))
        elif kind == "ts":
            exprs.append(_ts_expr(frame.schema[name], name))
        else:
            exprs.append(pl.col(name).cast(polars_type(kind), strict=False).alias(name))
    extras = [pl.col(name) for name in frame.columns if name not in dataset.column_names]
    return frame.select(*exprs, *extras)


def _set_by_core(dataset: Dataset) -> set[str]:
    return set(STREAM_COLUMNS) & set(dataset.column_names)


def _ts_expr(dtype: pl.DataType, name: str) -> pl.Expr:
    import polars as pl

    if dtype.is_integer():
        epoch = pl.from_epoch(pl.col(name), time_unit="ms")  # polars 2 returns microseconds here
        return epoch.dt.replace_time_zone("UTC").dt.cast_time_unit("ms").alias(name)
    if isinstance(dtype, pl.Datetime):
        col = pl.col(name)
        col = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col.dt.convert_time_zone("UTC")
        return col.dt.cast_time_unit("ms").alias(name)
    raise SourceError(f"column {name!r} must be epoch milliseconds or a datetime, not {dtype}")


def empty_frame(dataset: Dataset) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(schema={name: polars_type(kind) for name, kind in dataset.columns})



def dataset(name: str, where: str = "") -> Dataset:
    """The registered dataset called ``name`` (built-in or from a plugin)."""
    from .plugins import registry

    return registry().get("dataset", name, where)
