"""Parquet sink: a hive-partitioned lake, one file per stream and month, zstd-compressed.

Layout: ``<path>/<table>/source=<s>/symbol=<sym>/[timeframe=<tf>/]month=<YYYY-MM>/data.parquet``, with
partition values percent-encoded (DuckDB decodes them). A write merges the batch into each month file it
touches, keeps the newest row per key, and replaces the file atomically, so a replayed batch never
duplicates. Read it all with ``duckdb.read_parquet('<path>/<table>/**/*.parquet', hive_partitioning=true)``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import etl
from etl.checkpoint import atomic_write_bytes


class ParquetSink(etl.Sink):
    name = "parquet"
    options = {
        "path": etl.Option(Path, help="root folder of the lake"),
        "compression_level": etl.Option(int, 3, help="zstd level"),
    }

    def write(self, frame: Any, dataset: etl.Dataset, table: str) -> None:
        import polars as pl

        if not frame.height:
            return
        partition_columns = [c for c in ("source", "symbol", "timeframe") if c in dataset.column_names]
        keyed = frame.with_columns(pl.col("ts").dt.strftime("%Y-%m").alias("__month"))
        for values, part in keyed.group_by([*partition_columns, "__month"], maintain_order=True):
            names = [*partition_columns, "month"]
            folder = Path(self.settings["path"], table, *(f"{n}={quote(str(v), safe='')}" for n, v in zip(
                names, values, strict=True)))
            self._merge(folder / "data.parquet", part.drop("__month"), dataset)

    def _merge(self, target: Path, batch: Any, dataset: etl.Dataset) -> None:
        import polars as pl

        if target.exists():
            existing = pl.read_parquet(target)
            batch = pl.concat([existing, batch], how="diagonal_relaxed")
        merged = batch.unique(subset=list(dataset.key), keep="last", maintain_order=True).sort("ts")
        buffer = io.BytesIO()
        merged.write_parquet(buffer, compression="zstd", compression_level=self.settings["compression_level"])
        atomic_write_bytes(target, buffer.getvalue())


@etl.hookimpl
def register_sinks(register):
    register(ParquetSink)
