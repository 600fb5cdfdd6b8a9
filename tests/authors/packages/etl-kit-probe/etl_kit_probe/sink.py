"""The probe sink: one Parquet file per table, merged on the dataset key and replaced atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import etl
from etl.checkpoint import atomic_write_bytes

SINK_DEFECTS = ("none", "append", "drop_new_columns", "no_type_check", "eager_open", "delete_by_ts")


class ProbeSink(etl.Sink):
    name = "probe"
    options = {
        "path": etl.Option(Path, help="folder of the Parquet files"),
        "defect": etl.Option(str, "none", choices=SINK_DEFECTS, help="the contract to break"),
    }

    def __init__(self, settings: dict[str, Any], context: etl.PluginContext):
        super().__init__(settings, context)
        if settings["defect"] == "eager_open":
            settings["path"].mkdir(parents=True, exist_ok=True)

    def write(self, frame: Any, dataset: etl.Dataset, table: str) -> None:
        import io

        import polars as pl

        defect = self.settings["defect"]
        target = self.settings["path"] / f"{table}.parquet"
        if not frame.height:
            return
        if target.exists():
            stored = pl.read_parquet(target)
            if defect == "drop_new_columns":
                frame = frame.select([name for name in frame.columns if name in stored.columns])
            elif defect != "no_type_check":
                for name, dtype in frame.schema.items():
                    if name in stored.columns and stored.schema[name] != dtype:
                        raise etl.SinkError(f"probe: column {name!r} is {stored.schema[name]}, batch has {dtype}")
            if defect == "delete_by_ts":
                stored = stored.filter(~pl.col("ts").is_in(frame["ts"].implode()))
            frame = pl.concat([stored, frame], how="diagonal_relaxed")
        if defect != "append":
            frame = frame.unique(subset=list(dataset.key), keep="last", maintain_order=True)
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        atomic_write_bytes(target, buffer.getvalue())
