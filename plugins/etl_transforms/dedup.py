"""The ``dedup`` transform: one row per key (the dataset's key, e.g. source, symbol, timeframe, ts).

Two rows with the same key are either exact repeats (a source paging overlap: noise) or conflicting
versions (the same bar with different values: a data-quality signal). Both are removed down to one
row, the ``keep`` option choosing which version survives, and counted apart in the run summary:
``duplicates`` for exact repeats, ``dedup_conflicts`` for extra versions. For a key seen as A, A, B
that is one of each, so the two counters add up to the rows removed. Only the batch's new rows are
counted; warm-up rows were counted by the run that loaded them.
"""

from __future__ import annotations

from typing import Any

import etl


class DedupTransform(etl.Transform):
    name = "dedup"
    options = {
        "keep": etl.Option(str, "last", choices=("last", "first"),
                           help="which of several rows with the same key survives, in arrival order"),
    }

    def apply(self, frame: Any, batch: etl.BatchContext) -> Any:
        import polars as pl

        from etl.datasets import dataset

        key = list(dataset(batch.stream.dataset).key)
        repeated = frame.select(pl.struct(key).is_duplicated()).to_series()
        if not repeated.any():
            return frame
        _count(batch.new_rows(frame.filter(repeated)), key, batch)
        survivor = pl.struct(key).is_last_distinct() if self.settings["keep"] == "last" else (
            pl.struct(key).is_first_distinct()
        )
        return frame.filter(survivor)


def _count(repeated: Any, key: list[str], batch: etl.BatchContext) -> None:
    """Count exact repeats and conflicting versions among rows that share a key."""
    import polars as pl

    groups = repeated.group_by(key).agg(
        pl.len().alias("rows"), pl.struct(pl.all().exclude(key)).n_unique().alias("versions")
    )
    totals = groups.select((pl.col("rows") - pl.col("versions")).sum(), (pl.col("versions") - 1).sum())
    exact, conflicts = totals.row(0)
    batch.count("duplicates", exact)
    batch.count("dedup_conflicts", conflicts)
