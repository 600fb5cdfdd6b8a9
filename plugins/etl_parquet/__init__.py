"""Parquet sink: a hive-partitioned lake, one zstd file per stream and month, merged on the key.

Options::

    [[pipelines.NAME.sinks]]
    plugin = "parquet"
    path = "data/lake"            # root folder, created if missing; relative to the pipeline file
    # table = "ohlcv"             # default: the dataset name
    # compression_level = 3       # zstd level

Layout: ``<path>/<table>/source=<s>/symbol=<sym>/[timeframe=<tf>/]month=<YYYY-MM>/data.parquet``, the
month of ``ts`` in UTC. Partition values are percent-encoded (``BTC/USDT`` is ``symbol=BTC%2FUSDT``;
DuckDB and polars decode them), and the files hold every column, partition columns included, so each
file reads on its own. Read the table as one dataset with::

    duckdb.read_parquet('<path>/<table>/**/*.parquet', hive_partitioning=true, union_by_name=true)

(``union_by_name`` because files written before a column was added lack it; the hive ``month`` column
comes along). A write merges the batch into each month file it touches: the file's rows and the batch
are concatenated, the batch's row wins for a key, rows are sorted by ``ts`` and key, and the file is
replaced atomically (temp file, fsync, rename), so a replayed batch never duplicates. A batch that
spans several months replaces several files, each atomically; a crash between two leaves the batch
partly applied until the runner replays it, which it always does since the checkpoint did not move.
A batch replaces whole rows: a column the batch lacks becomes null for the rows it rewrites, the same
in every sink of this project. A column whose type differs from the file's is a SinkError naming the
table, file, column and both types. A key's ``ts`` is assumed fixed (it picks the month file). Each
stream's files have one writer at a time (the pipeline lock sees to it); two pipelines writing the same
stream into the same lake at once could lose one's merge.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import etl
from etl.checkpoint import atomic_write_bytes
from etl.errors import SinkError

PARTITION_COLUMNS = ("source", "symbol", "timeframe")


def _check_level(level: int) -> None:
    if not 1 <= level <= 22:
        raise ValueError("zstd levels run from 1 to 22")


class ParquetSink(etl.Sink):
    name = "parquet"
    options = {
        "path": etl.Option(Path, help="root folder of the lake"),
        "compression_level": etl.Option(int, 3, help="zstd level", check=_check_level),
    }

    def write(self, frame: Any, dataset: etl.Dataset, table: str) -> None:
        import polars as pl

        if "ts" not in frame.columns:
            raise SinkError(f"parquet table {table!r}: the batch lacks column ts, which picks its month file")
        partition_columns = [column for column in PARTITION_COLUMNS if column in dataset.column_names]
        ts = pl.col("ts").dt.convert_time_zone("UTC") if frame.schema["ts"].time_zone else pl.col("ts")
        keyed = frame.with_columns(ts.dt.strftime("%Y-%m").alias("__month"))
        names = [*partition_columns, "month"]
        for values, part in keyed.group_by([*partition_columns, "__month"], maintain_order=True):
            folder = Path(self.settings["path"], table,
                          *(f"{name}={quote(str(value), safe='')}" for name, value in zip(names, values, strict=True)))
            self._merge(folder / "data.parquet", part.drop("__month"), dataset, table)

    def stored(self, dataset: etl.Dataset, table: str) -> list[etl.StoredStream]:
        """Per stream folder of the table: rows and ``ts`` range from each month file's footer, bytes on disk."""
        from urllib.parse import unquote

        folders: dict[Path, list[Path]] = {}
        for file in sorted(Path(self.settings["path"], table).glob("**/month=*/data.parquet")):
            folders.setdefault(file.parent.parent, []).append(file)
        found = []
        for folder, files in folders.items():
            parts = dict(part.split("=", 1) for part in folder.relative_to(Path(self.settings["path"], table)).parts)
            rows, first, last = _summary(files)
            found.append(etl.StoredStream(tuple(unquote(parts[column]) for column in dataset.stream_key), rows,
                                          first, last, sum(file.stat().st_size for file in files)))
        return found

    def read(self, dataset: etl.Dataset, table: str, selection: etl.Selection) -> Any:
        """A lazy scan of the selected symbols' month files (each on its own: files written before a column
        was added lack it), filtered on ``ts``, so only what the caller collects is read."""
        import polars as pl

        from etl.timeframes import from_ms

        root = Path(self.settings["path"], table, f"source={quote(selection.source, safe='')}")
        folders = [root / f"symbol={quote(symbol, safe='')}" for symbol in selection.symbols] \
            if selection.symbols is not None else [root]
        files = sorted(file for folder in folders for file in folder.glob("**/month=*/data.parquet"))
        if not files:
            return pl.LazyFrame()
        frame = pl.concat([pl.scan_parquet(file, hive_partitioning=False) for file in files], how="diagonal_relaxed")
        if selection.start is not None:
            frame = frame.filter(pl.col("ts") >= from_ms(selection.start))
        if selection.end is not None:
            frame = frame.filter(pl.col("ts") < from_ms(selection.end))
        return frame

    def prune(self, dataset: etl.Dataset, table: str, match: dict[str, str], before: int | None) -> int:
        """Month files wholly before ``before`` (or all) are removed, the one across it rewritten atomically: each
        file is replaced or gone whole, and a prune killed between two files finishes when run again."""
        import polars as pl

        from etl.timeframes import from_ms

        folder = Path(self.settings["path"], table, *(f"{name}={quote(value, safe='')}"
                                                      for name, value in match.items()))
        deleted = 0
        for file in sorted(folder.glob("**/month=*/data.parquet")):
            frame = pl.read_parquet(file, hive_partitioning=False)
            kept = frame.filter(pl.col("ts") >= from_ms(before)) if before is not None else frame.clear()
            deleted += frame.height - kept.height
            if not kept.height:
                file.unlink()
            elif kept.height < frame.height:
                buffer = io.BytesIO()
                kept.write_parquet(buffer, compression="zstd", compression_level=self.settings["compression_level"])
                atomic_write_bytes(file, buffer.getvalue())
        for empty in sorted((path for path in [folder, *folder.glob("**/*")] if path.is_dir()), reverse=True):
            if not any(empty.iterdir()):
                empty.rmdir()
        return deleted

    def _merge(self, target: Path, batch: Any, dataset: etl.Dataset, table: str) -> None:
        import polars as pl

        if target.exists():
            existing = pl.read_parquet(target)
            batch = pl.concat([existing, _conformed(existing, batch, table, target)], how="diagonal")
        merged = batch.unique(subset=list(dataset.key), keep="last", maintain_order=True)
        merged = merged.sort(["ts", *(column for column in dataset.key if column != "ts")])
        buffer = io.BytesIO()
        merged.write_parquet(buffer, compression="zstd", compression_level=self.settings["compression_level"])
        atomic_write_bytes(target, buffer.getvalue())


def _summary(files: list[Path]) -> tuple[int, int, int]:
    """Rows, and the first and last ``ts`` in epoch milliseconds, of a stream's month files."""
    import polars as pl

    frames = [pl.scan_parquet(file, hive_partitioning=False).select(
        pl.len().alias("rows"), pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last")) for file in files]
    total = pl.concat(pl.collect_all(frames)).select(
        pl.col("rows").sum(), pl.col("first").min().dt.epoch("ms"), pl.col("last").max().dt.epoch("ms"))
    return total.row(0)


def _conformed(existing: Any, batch: Any, table: str, target: Path) -> Any:
    """The batch with the file's types; datetimes of another unit are converted, any other change refused."""
    import polars as pl

    casts = []
    for column, dtype in batch.schema.items():
        stored = existing.schema.get(column)
        if stored is None or stored == dtype:
            continue
        if isinstance(stored, pl.Datetime) and isinstance(dtype, pl.Datetime) and \
                (stored.time_zone is None) == (dtype.time_zone is None):
            casts.append(pl.col(column).cast(stored))
            continue
        raise SinkError(f"parquet table {table!r} column {column!r} is {stored} in {target} but the batch "
                        f"has {dtype}")
    return batch.with_columns(casts)


@etl.hookimpl
def register_sinks(register):
    register(ParquetSink)
