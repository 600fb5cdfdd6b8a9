"""The unit of work: one stream over one window, from plain specs to transformed batches.

A ``WorkUnit`` holds only plain, picklable data (specs, names, integers), so an executor on another
machine can run ``execute`` unchanged; committing the batches it yields is the runner's job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import BatchContext, PluginContext, Source, SourceConfig, Stream, Transform
from .config import PluginSpec
from .errors import SourceError
from .fallback import Chain
from .report import Tally, count_into

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class WorkUnit:
    pipeline: str
    source: SourceConfig
    transforms: tuple[PluginSpec, ...]
    stream: Stream
    start: int
    end: int
    warmup_rows: int
    warmup_ms: int
    batch_rows: int
    base_dir: Path
    state_dir: Path
    previous_ts: int | None = None
    committed_keys: tuple[tuple[Any, ...], ...] = ()
    chunk_start: int | None = None  # set when the unit is one chunk of a longer backfill window
    sinks: tuple[Any, ...] = ()  # the pipeline's SinkSpecs, for transforms that read what they stored
    sink_wait: float = 0.0  # how long such a transform waits for a sink file another process holds

    @property
    def key(self) -> str:
        """The unit's checkpoint entry: the stream's label, or for a chunk the label at the chunk's start."""
        return self.stream.label if self.chunk_start is None else chunk_key(self.stream, self.chunk_start)


def chunk_key(stream: Stream, chunk_start: int) -> str:
    from .checkpoint import chunk_label

    return chunk_label(stream.label, chunk_start)


@dataclass
class Batch:
    """Rows ready for the sinks, and the checkpoint to record once every sink has committed them.

    ``next_keys`` are the keys committed at ``next_ms`` itself, for streams that checkpoint at their last
    instant (trades): the next run re-reads that instant and skips them.
    """

    frame: pl.DataFrame
    next_ms: int
    next_keys: tuple[tuple[Any, ...], ...] = ()
    tally: Tally = field(default_factory=Tally)
    key: str = ""  # the checkpoint entry it advances (``WorkUnit.key``); the stream's label when empty
    held: bool = False  # a transform held rows back (``BatchContext.hold``): the checkpoint stays at ``next_ms``


class SourcePool:
    """One source object per configuration for a run (or a Dask worker), so market metadata loads once and
    every stream shares the source's rate limiter; passed to whoever runs units, never a module global."""

    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}
        self._lock = threading.Lock()

    def get(self, config: SourceConfig) -> Source:
        from .plugins import registry

        key = repr(config)
        with self._lock:
            if key not in self._sources:
                self._sources[key] = registry().get("source", config.plugin)(config)
            return self._sources[key]

    def close(self) -> None:
        with self._lock:
            for source in self._sources.values():
                source.close()
            self._sources.clear()


def build_transforms(pipeline: str, specs: tuple[PluginSpec, ...], base_dir: Path, state_dir: Path,
                     sinks: tuple[Any, ...] = (), sink_wait: float = 0.0) -> list[Transform]:
    from .plugins import registry

    context = PluginContext(pipeline, base_dir, state_dir, sinks, sink_wait)
    return [registry().get("transform", spec.plugin)(spec.settings, context) for spec in specs]


def chain_warmup(transforms: list[Transform], stream: Stream) -> int:
    """Rows of the source stream to read before the window so every transform of the chain is exact."""
    streams = []
    for transform in transforms:
        streams.append(stream)
        stream = transform.output_stream(stream)
    rows = 0
    for transform, seen in zip(reversed(transforms), reversed(streams), strict=True):
        rows = transform.input_rows(seen, rows)
    return rows


def execute(unit: WorkUnit, sources: SourcePool, tally: Tally) -> Iterator[Batch]:
    """Fetch the unit's window (plus warm-up), transform it, and yield batches of new rows in time order.

    Each batch carries what was counted while it was made (``Batch.tally``); what is counted after the last
    batch stays in ``tally`` for the caller. The same call runs a unit in a thread here or on a Dask worker.
    """
    return Execution(unit, sources, tally).batches()


class Execution:
    """One unit's journey: fetch -> conform -> gather ``batch_rows`` -> complete the warm-up -> transforms ->
    new rows only -> a batch with the checkpoint its commit earns."""

    def __init__(self, unit: WorkUnit, sources: SourcePool, tally: Tally):
        from .datasets import dataset

        self.unit, self.tally, self.stream = unit, tally, unit.stream
        self.source = Chain(unit.source, sources, tally)
        self.transforms = build_transforms(unit.pipeline, unit.transforms, unit.base_dir, unit.state_dir, unit.sinks,
                                           unit.sink_wait)
        self.schema = dataset(self.stream.dataset)
        self.fetch_start = unit.start - unit.warmup_ms
        self.instant_keys = instant_keys(self.schema)
        self.context: pl.DataFrame | None = None
        self.new_from = unit.start
        self.last_seen = unit.previous_ts
        self.committed: tuple[int, tuple[tuple[Any, ...], ...]] = (unit.start, unit.committed_keys)
        self.reached_window = False
        self.pending: list[pl.DataFrame] = []
        self.pending_rows = 0
        # Rows a transform held back (``BatchContext.hold``) at the last flush: transformed again with the next, so a
        # stream followed live stores them once their inputs arrive. Past ``batch_rows`` of them the hold sticks
        # (``held``): nothing more of the unit is stored, and a later run computes it all again.
        self.waiting: pl.DataFrame | None = None
        self.held: int | None = None
        self.held_rows = 0

    def batches(self) -> Iterator[Batch]:
        return self.feed(self.source.fetch(self.stream, self.fetch_start, self.unit.end), self.unit.batch_rows)

    def feed(self, frames: Iterable[pl.DataFrame], batch_rows: int) -> Iterator[Batch]:
        """Batches of at least ``batch_rows`` rows of ``frames``, and of what is left at their end; rows before
        the window alone never make a batch. Called again with later frames, it goes on where it stopped
        (``etl stream`` feeds a stream's REST heal, then its live bars, through one execution); warm-up rows
        read before anything new arrived wait for it."""
        count_into(self.tally)
        for frame in frames:
            conformed = self._conformed(frame) if frame.height else None
            if conformed is None:
                continue
            self.pending.append(conformed)
            self.pending_rows += conformed.height
            self.reached_window = self.reached_window or _ms(conformed["ts"].max()) >= self.unit.start
            if self.pending_rows >= batch_rows and self.reached_window:
                yield from self._flush_pending()
        if self.reached_window and self.pending_rows:
            yield from self._flush_pending()

    def _flush_pending(self) -> Iterator[Batch]:
        pending, self.pending, self.pending_rows = self.pending, [], 0
        yield from self._flush(pending)

    def _conformed(self, frame: pl.DataFrame) -> pl.DataFrame | None:
        """The source's frame in the dataset schema and the fetch window; None when nothing is left."""
        from .timeframes import from_ms, now_ms

        frame = self._prepared(frame)
        ts = frame["ts"]
        now, first, last = from_ms(now_ms()), ts.min(), ts.max()
        if last > now:
            self.tally.count(self.stream, "future_rows_dropped", int((ts > now).sum()))
        if first < from_ms(self.fetch_start) or last >= from_ms(self.unit.end):
            frame = frame.filter(between(self.fetch_start, self.unit.end))
        if self.committed[1] and frame.height and first <= from_ms(self.committed[0]):
            frame = self._without_committed(frame)
        return frame if frame.height else None

    def _prepared(self, frame: pl.DataFrame) -> pl.DataFrame:
        from .datasets import conform

        frame = conform(frame, self.schema, self.stream, self.source.stored_name)
        if frame["ts"].null_count():
            raise SourceError(f"{self.unit.source.plugin} returned rows without a timestamp for {self.stream.label}")
        return frame

    def _without_committed(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Rows of the last committed instant are not delivered again: those the checkpoint names (an earlier
        run), and those this execution committed since (``etl stream`` feeds a heal, then live rows, through it)."""
        import polars as pl

        from .timeframes import ts_literal

        instant, keys = self.committed
        committed = pl.DataFrame([list(key) for key in keys], orient="row",
                                 schema={name: frame.schema[name] for name in self.instant_keys})
        done = pl.lit(True).alias("__committed")
        marked = frame.join(committed.with_columns(done), on=self.instant_keys, how="left", nulls_equal=True,
                            maintain_order="left")
        again = (pl.col("ts") == ts_literal(instant)) & pl.col("__committed").fill_null(False)
        return marked.filter(~again).drop("__committed")

    def _flush(self, pending: list[pl.DataFrame]) -> Iterator[Batch]:
        import polars as pl

        from .timeframes import ts_literal

        raw = pl.concat(pending, how="diagonal_relaxed")
        if not raw["ts"].is_sorted():
            raw = raw.sort("ts", maintain_order=True)
        if self.context is None and self.unit.warmup_rows:
            raw = self._with_exact_warmup(raw)
        self._record_gaps(raw)
        if self.waiting is not None:
            raw, self.waiting = pl.concat([self.waiting, raw], how="diagonal_relaxed"), None
        last_ts = _ms(raw["ts"].max())
        frame = raw if self.context is None else pl.concat([self.context, raw], how="diagonal_relaxed")
        if self.unit.warmup_rows:
            self.context = frame.filter(pl.col("ts") <= ts_literal(last_ts)).tail(self.unit.warmup_rows)
        given, batch_context = frame, BatchContext(self.stream, self.new_from, self.tally)
        for transform in self.transforms:
            frame = transform.apply(frame, batch_context)
        hold = self._hold(batch_context, given)
        out = self.source.relabel(self._drop_repeated_keys(self._final(hold, batch_context.new_rows(frame))))
        # More rows of the last instant may follow in the next batch (trades of one millisecond): they are new.
        following = last_ts if self.instant_keys else self._following(last_ts)
        self.new_from = max(self.new_from, following) if hold is None else hold
        if last_ts >= self.unit.start:
            yield self._batch(out, last_ts, hold)

    def _hold(self, batch_context: BatchContext, given: pl.DataFrame) -> int | None:
        """Where this flush's output stops (``BatchContext.hold``, or a hold that stuck); rows from there wait for
        the next flush, with the warm-up before them as its context."""
        import polars as pl

        from .timeframes import ts_literal

        if self.held is not None or batch_context.held is None:
            return self.held
        hold = max(batch_context.held, self.new_from)
        waiting = given.filter(pl.col("ts") >= ts_literal(hold))
        if waiting.height > self.unit.batch_rows:
            self.held = hold
            return hold
        self.waiting = waiting
        if self.unit.warmup_rows:
            self.context = given.filter(pl.col("ts") < ts_literal(hold)).tail(self.unit.warmup_rows)
        return hold

    def _final(self, hold: int | None, out: pl.DataFrame) -> pl.DataFrame:
        """The rows before the hold. The ``held_rows`` counter ends at the rows not stored: rows a flush held and the
        next one stores (or holds again) count once."""
        import polars as pl

        from .timeframes import ts_literal

        final = out if hold is None else out.filter(pl.col("ts") < ts_literal(hold))
        held = out.height - final.height
        self.tally.count(self.stream, "held_rows", held - self.held_rows)
        self.held_rows = held if self.waiting is not None else 0
        return final

    def _with_exact_warmup(self, raw: pl.DataFrame) -> pl.DataFrame:
        """Exactly ``warmup_rows`` rows before the window. The first read guessed their time from the
        timeframe: missing bars made it short (read further back) or it was generous (trim it)."""
        import polars as pl

        from .timeframes import from_ms
        from .warmup import rows_before

        have, wanted = int((raw["ts"] < from_ms(self.unit.start)).sum()), self.unit.warmup_rows
        if have >= wanted:
            return raw.slice(have - wanted)
        older = rows_before(self.source, self.stream, self.fetch_start, wanted - have, self._prepared)
        return raw if older is None else pl.concat([older, raw], how="diagonal_relaxed")

    def _record_gaps(self, raw: pl.DataFrame) -> None:
        from .gaps import find_gaps, on_calendar
        from .timeframes import from_ms

        if not self.stream.timeframe:
            return
        loaded = raw["ts"]
        if loaded.min() < from_ms(self.unit.start):
            loaded = loaded.filter(loaded >= from_ms(self.unit.start))
        if not loaded.len():
            return
        loaded = loaded.dt.epoch("ms")
        gaps = on_calendar(find_gaps(loaded, self.last_seen, self.stream.timeframe), self.source, self.stream)
        if gaps:
            self.tally.gaps(self.stream, gaps)
        self.last_seen = max(loaded.max(), self.last_seen or 0)

    def _following(self, last_ts: int) -> int:
        from .timeframes import next_bar

        return next_bar(last_ts, self.stream.timeframe) if self.stream.timeframe else last_ts + 1

    def _batch(self, out: pl.DataFrame, last_ts: int, hold: int | None) -> Batch:
        """The batch and its checkpoint: the next bar, or for streams with several rows per instant the last
        instant itself, with the keys committed at it (the rest of that millisecond may arrive later); where a
        transform held rows back, the first of them."""
        import polars as pl

        from .timeframes import ts_literal

        if hold is not None:
            return Batch(out, hold, tally=self.tally.drain(), key=self.unit.key, held=True)
        if not self.instant_keys:
            return Batch(out, self._following(last_ts), tally=self.tally.drain(), key=self.unit.key)
        at_last = out.filter(pl.col("ts") == ts_literal(last_ts)).select(self.instant_keys)
        earlier = self.committed[1] if last_ts == self.committed[0] else ()
        keys = tuple(dict.fromkeys([*earlier, *at_last.iter_rows()]))
        self.committed = (last_ts, keys)
        return Batch(out, last_ts, keys, self.tally.drain(), self.unit.key)

    def _drop_repeated_keys(self, out: pl.DataFrame) -> pl.DataFrame:
        """Sinks rely on unique keys per batch; keep the last row of a repeated key and count it."""
        varying = [column for column in self.schema.key if column not in self.schema.stream_key]
        if not out.select(varying).is_duplicated().any():
            return out
        unique = out.unique(subset=varying, keep="last", maintain_order=True)
        self.tally.count(self.stream, "duplicates_dropped", out.height - unique.height)
        return unique


def instant_keys(schema: Any) -> list[str]:
    """Key columns beside ``ts`` that tell one stream's rows of the same instant apart (a trade id)."""
    return [name for name in schema.key if name not in schema.stream_key and name != "ts"]


def between(start: int, end: int) -> pl.Expr:
    import polars as pl

    from .timeframes import ts_literal

    return (pl.col("ts") >= ts_literal(start)) & (pl.col("ts") < ts_literal(end))


def _ms(value: Any) -> int:
    """Epoch milliseconds of a UTC datetime polars handed back."""
    return int(value.timestamp() * 1000)
