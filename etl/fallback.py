"""A pipeline's source and its fallbacks, seen by one unit of work as one source.

    [pipelines.btc.source]
    plugin = "polygon"
    symbols = ["BTC"]                        # canonical names, stored as written
    symbol_map = { "BTC" = { polygon = "X:BTCUSD", yahoo = "BTC-USD" } }
    fallback = [{ plugin = "yahoo" }]

Every source is asked for the stream under its own symbol (``SourceConfig.symbol_for``). When the primary
fails a window for good (a ``SourceError``: a permanent error, retries exhausted, or its host's circuit open),
the next fallback fetches the rest of that window, from the bar after the last row the failed source delivered
(the next millisecond without a timeframe): rows are never asked of two sources for the same instant. Each
row carries the ``source`` that delivered it (the fallback's stored name); ``symbol`` stays canonical; the
stream's checkpoint is the canonical stream's.

Decisions, and why:

- Every window starts with the primary again, so an outage heals itself with no one editing the file. In one
  run a host that failed every retry stays down (``etl.http.Circuit``), so later windows of that run fall
  back at once instead of waiting out the retries again.
- Transforms see one series per canonical stream: the rows are conformed under the primary's name and the
  fallback's rows relabelled after the transforms, so features and resampling run across the switch
  (warm-up bars may come from either source). The next run's warm-up asks the primary again, and falls back
  the same way if it is still down.
- A bar is never fetched from two sources in one run, so ``dedup`` never sees two sources' versions of a bar.
  Across runs it can happen: the key includes ``source``, so a later backfill of a window a fallback filled
  stores the primary's bars beside the fallback's. That is kept on purpose: the two venues' bars differ
  (volume, the trades they count), and the ``source`` column says which is which; ``etl prune`` can remove
  either. Deleting the fallback's rows when the primary recovers would need every sink to delete on write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import SourceError
from .log import get_logger
from .report import Fallback, Tally
from .timeframes import iso

if TYPE_CHECKING:
    import polars as pl

    from .base import Source, SourceConfig
    from .stream import Stream
    from .unit import SourcePool

log = get_logger("etl.fallback")


class Chain:
    """The primary source of a unit and its fallbacks, in order; what the unit's execution fetches through.

    ``spans`` are the windows fallbacks delivered, so ``relabel`` can give their rows the right ``source``.
    """

    def __init__(self, config: SourceConfig, sources: SourcePool, tally: Tally):
        self.config = config
        self.links = [sources.get(item) for item in (config, *config.fallbacks)]
        self.primary = self.links[0]
        self.tally = tally
        self.spans: list[tuple[int, int, str]] = []

    @property
    def stored_name(self) -> str:
        return self.primary.stored_name

    def mapped(self, source: Source, stream: Stream) -> Stream:
        """The stream as ``source`` names it."""
        symbol = self.config.symbol_for(stream.symbol, source.config.plugin)
        return stream if symbol == stream.symbol else dataclasses.replace(stream, symbol=symbol)

    def row_interval_ms(self, stream: Stream) -> int:
        return self.primary.row_interval_ms(self.mapped(self.primary, stream))

    def trading_bars(self, stream: Stream, start: int, end: int) -> pl.Series | None:
        return self.primary.trading_bars(self.mapped(self.primary, stream), start, end)

    def history(self, stream: Stream, before: int, rows: int) -> Iterator[pl.DataFrame] | None:
        return self.primary.history(self.mapped(self.primary, stream), before, rows)

    def fetch(self, stream: Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        """The primary's frames of ``[start, end)``; after a failure, the next source's from where it stopped."""
        position, failures = start, []
        for index, source in enumerate(self.links):
            try:
                for frame in source.fetch(self.mapped(source, stream), position, end):
                    if frame.height:
                        position = max(position, _following(_last_ms(frame), stream))
                    yield frame
                return
            except SourceError as exc:
                if index + 1 == len(self.links):
                    if not failures:
                        raise
                    raise SourceError("; then ".join([*failures, f"fallback {source.config.plugin}: {exc}"])) from None
                failures.append(f"{exc}" if index == 0 else f"fallback {source.config.plugin}: {exc}")
                self._fall_back(stream, source, self.links[index + 1], position, end, exc)

    def _fall_back(self, stream: Stream, failed: Source, fallback: Source, start: int, end: int,
                   error: SourceError) -> None:
        record = Fallback(start, end, failed.config.plugin, fallback.config.plugin, str(error))
        self.tally.fell_back(stream, record)
        self.spans.append((start, end, fallback.stored_name))
        log.warning("source failed a window; its fallback fetches it", stream=stream.label,
                    source=record.source, fallback=record.fallback, window=f"{iso(start)}..{iso(end)}",
                    error=record.reason)

    def relabel(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with the fallbacks' names as ``source`` of the rows they delivered."""
        if not self.spans or not frame.height:
            return frame
        import polars as pl

        from .timeframes import ts_literal

        source = pl.col("source")
        for start, end, name in self.spans:  # a later fallback's span lies within an earlier one's: it wins
            inside = (pl.col("ts") >= ts_literal(start)) & (pl.col("ts") < ts_literal(end))
            source = pl.when(inside).then(pl.lit(name)).otherwise(source)
        return frame.with_columns(source.alias("source"))


def stored_names(config: SourceConfig) -> tuple[str, ...]:
    """The ``source`` values a pipeline's rows may carry: its source's stored name, then each fallback's (they
    deliver the windows the primary failed). ``etl.read``, ``etl status --stored`` and ``etl prune`` cover all."""
    from .plugins import registry

    return tuple(dict.fromkeys(registry().get("source", item.plugin)(item).stored_name
                               for item in (config, *config.fallbacks)))


def _following(ts: int, stream: Stream) -> int:
    """Where a fallback starts after a source's last row: the next bar, or the next millisecond."""
    from .timeframes import next_bar

    return next_bar(ts, stream.timeframe) if stream.timeframe else ts + 1


def _last_ms(frame: pl.DataFrame) -> int:
    """The last ``ts`` of a source's frame, in epoch milliseconds, whether it came as integers or datetimes."""
    ts = frame["ts"]
    return int(ts.dt.epoch("ms").max() if ts.dtype.is_temporal() else ts.max())  # type: ignore[arg-type]
