"""Dataset schemas (the columns and key of what flows from sources to sinks) and batch conformance.

Schemas are plain data so that importing this module costs nothing; polars is imported only when a
batch is actually conformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import SourceError

if TYPE_CHECKING:
    import polars as pl

    from .base import Stream

# Column kinds: "str" Utf8, "ts" Datetime(ms, UTC), "f64" Float64, "i64" Int64.
Columns = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Dataset:
    """A dataset: its required columns in order, and the key a sink upserts on."""

    name: str
    columns: Columns
    key: tuple[str, ...]
    description: str = ""
    nullable: tuple[str, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def required_values(self) -> tuple[str, ...]:
        """Columns that must hold a value in every row."""
        return tuple(name for name in self.column_names if name not in self.nullable)

    @property
    def has_timeframe(self) -> bool:
        return "timeframe" in self.column_names

    @property
    def stream_key(self) -> tuple[str, ...]:
        """Key columns that name the stream (constant in one stream's batches); the rest vary within it."""
        return tuple(name for name in self.key if name in STREAM_COLUMNS)


# Columns the core sets from the stream itself, whatever the source returned.
STREAM_COLUMNS = ("source", "symbol", "timeframe")


_SOURCE_AND_SYMBOL: Columns = (("source", "str"), ("symbol", "str"))

BUILTIN_DATASETS = (
    Dataset(
        "ohlcv",
        (
            *_SOURCE_AND_SYMBOL,
            ("timeframe", "str"),
            ("ts", "ts"),
            ("open", "f64"),
            ("high", "f64"),
            ("low", "f64"),
            ("close", "f64"),
            ("volume", "f64"),
        ),
        ("source", "symbol", "timeframe", "ts"),
        "candles; ts is the bar start; volume is null where the source has no trades (mid-price candles)",
        nullable=("volume",),
    ),
    Dataset(
        "funding",
        (*_SOURCE_AND_SYMBOL, ("ts", "ts"), ("funding_rate", "f64")),
        ("source", "symbol", "ts"),
        "funding-rate settlements of perpetuals",
    ),
    Dataset(
        "open_interest",
        (*_SOURCE_AND_SYMBOL, ("ts", "ts"), ("open_interest", "f64")),
        ("source", "symbol", "ts"),
        "open interest of perpetuals, in contracts or base coin",
    ),
    Dataset(
        "trades",
        (*_SOURCE_AND_SYMBOL, ("ts", "ts"), ("trade_id", "str"), ("price", "f64"), ("size", "f64"), ("side", "str")),
        ("source", "symbol", "trade_id"),
        "individual trades",
    ),
)


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
