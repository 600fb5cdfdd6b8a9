"""The ``resample`` transform: candles of a stream's timeframe into candles of a coarser one (``to``).

A target bar takes the first open, the highest high, the lowest low and the last close of its
sub-bars; volume and every numeric extra (quote volume, trades, taker volume) are summed, and are
null when a sub-bar's value is null (a partial sum would look like a real one). Text extras keep the
last value. Bars are aligned in UTC exactly as ``etl.timeframes.floor_ts``: days at 00:00, weeks on
Monday, months on the 1st, everything else from the epoch. Rows leave with ``timeframe`` set to the target.

How it fits the runner, which works per input stream and keeps only output rows that are new:

- Completeness. A bar is emitted once it is complete: its last sub-bar is in the batch, or a later
  row is (the data has moved past it, so a sub-bar missing at its end is a gap, not a wait). The
  trailing bar of a batch that still lacks its last sub-bar is never emitted; it is emitted by the
  batch or run that brings that sub-bar.
- Warm-up. The batch or run that completes a bar must see all of the bar's earlier sub-bars, which
  the runner prepends as warm-up: ``input_rows`` asks for two target bars' worth of sub-bars. One bar
  is enough in principle; the second covers rows that validate or dedup drop from the runner's
  row-counted warm-up between batches. A transform after this one (``features``) states its warm-up in
  target bars; ``output_stream`` tells the runner so, and ``input_rows`` converts it to sub-bars.
- What is new. The runner keeps output rows with ``ts >= new_from`` (the first new input row); a
  target bar starts before it while its completion is new. ``apply`` therefore moves the batch's
  ``new_from`` back to the start of the target bar holding it: exactly the bars whose last sub-bar
  is new, so each bar is delivered once per load, and re-delivered (upserted to the same row) only
  when a crash replays its batch.
- Checkpoint. It stays per input stream (``ohlcv/BTCUSDT/1m``) and advances with the input rows. A
  bar waiting for its last sub-bar is rebuilt from the warm-up on the next run, so nothing is lost
  when a run stops between a bar's sub-bars.

Put ``validate`` and ``dedup`` before ``resample``: sums over repeated sub-bars would be wrong.
"""

from __future__ import annotations

from typing import Any

import etl
from etl.timeframes import TIMEFRAMES, floor_expr, floor_ts, next_expr, timeframe_ms

from .frames import bar_origin

_OHLCV = ("source", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume")


class ResampleTransform(etl.Transform):
    name = "resample"
    datasets = ("ohlcv",)
    options = {"to": etl.Option(str, choices=tuple(TIMEFRAMES), help="the coarser timeframe to build, e.g. 1h")}

    def warmup(self, stream: etl.Stream) -> int:
        return self.input_rows(stream, 0)

    def output_stream(self, stream: etl.Stream) -> etl.Stream:
        return etl.Stream(stream.dataset, stream.symbol, self.settings["to"])

    def input_rows(self, stream: etl.Stream, output_rows: int) -> int:
        """Two target bars of sub-bars for completeness, plus the target-bar history asked downstream."""
        bars = self._bars(stream)
        return (2 + output_rows) * (bars[1] // bars[0]) if bars else 0

    def _bars(self, stream: etl.Stream) -> tuple[int, int, int] | None:
        """Input bar length, target bar length and target origin (ms), or None when target bars are not
        whole, aligned groups of input bars."""
        step, target = timeframe_ms(stream.timeframe), timeframe_ms(self.settings["to"])
        origin = bar_origin(self.settings["to"])
        if target <= step or target % step or origin % step:
            return None
        return step, target, origin

    def apply(self, frame: Any, batch: etl.BatchContext) -> Any:
        import polars as pl

        to = self.settings["to"]
        bars = self._bars(batch.stream)
        if bars is None:
            raise etl.PermanentError(
                f"resample: cannot build {to} bars from the {batch.stream.timeframe} bars of {batch.stream.label}; "
                f"'to' must be a coarser timeframe made of whole, aligned {batch.stream.timeframe} bars"
            )
        step = bars[0]
        batch.new_from = floor_ts(batch.new_from, to)
        ms = pl.col("ts").dt.epoch("ms")
        built = (
            frame.with_columns(floor_expr(ms, to).alias("__bar"))
            .group_by("source", "symbol", "__bar", maintain_order=True)
            .agg(*_aggregations(frame), pl.col("ts").max().dt.epoch("ms").alias("__last"))
        )
        last_sub_bar = next_expr(pl.col("__bar"), to) - step
        trailing = pl.col("__bar") == pl.col("__bar").max().over("source", "symbol")
        complete = built.filter(~trailing | (pl.col("__last") == last_sub_bar))
        ts = pl.col("__bar").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("ts")
        extras = [name for name in frame.columns if name not in _OHLCV]
        return complete.select("source", "symbol", pl.lit(to).alias("timeframe"), ts,
                               "open", "high", "low", "close", "volume", *extras)


def _aggregations(frame: Any) -> list[Any]:
    import polars as pl

    def total(name: str) -> Any:
        column = pl.col(name)
        return pl.when(column.null_count() == 0).then(column.sum()).alias(name)

    aggregations = [pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
                    total("volume")]
    for name, dtype in frame.schema.items():
        if name not in _OHLCV:
            aggregations.append(total(name) if dtype.is_numeric() else pl.col(name).last())
    return aggregations
