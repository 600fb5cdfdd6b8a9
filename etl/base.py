"""The three plugin kinds, and the plain values the core hands them.

Plugin classes are declared at import time of a plugin module, so nothing here imports polars:
``etl plugins`` and ``etl --help`` stay fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from .errors import SinkError
from .options import Option
from .stream import Stream
from .timeframes import HOUR, timeframe_ms

if TYPE_CHECKING:
    import polars as pl

    from .datasets import Dataset
    from .live import Subscription
    from .selectors import Selector
    from .stored import Selection, StoredStream


@dataclass(frozen=True)
class SourceConfig:
    """What a pipeline's ``source`` table says, validated: core keys plus the plugin's own settings."""

    plugin: str
    dataset: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    start: int | None
    end: int | None
    settings: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = Path(".")
    state_dir: Path = Path(".etl")
    selector: Selector | None = None  # ``symbols`` as a selector; ``symbols`` then holds the run's resolved list
    # Sources that fetch a window the primary failed for good, in order (``etl.fallback``); each a config of its own.
    fallbacks: tuple[SourceConfig, ...] = ()
    # canonical symbol -> {plugin: that plugin's symbol}: the pipeline's symbols are canonical names
    symbol_map: dict[str, dict[str, str]] = field(default_factory=dict)

    def symbol_for(self, symbol: str, plugin: str | None = None) -> str:
        """What ``plugin`` (default: this source's) calls the canonical ``symbol``: the map's entry, or the name."""
        return self.symbol_map.get(symbol, {}).get(plugin or self.plugin, symbol)


class Listing(NamedTuple):
    """One symbol a venue lists: ``status`` is ``trading`` or the venue's own word for anything else (``break``,
    ``delisted``, ``closed``), lower case; ``quote_volume`` its last 24 hours in the quote currency, if asked."""

    symbol: str
    status: str
    quote_volume: float | None = None


@dataclass(frozen=True)
class PluginContext:
    """Where a transform or sink runs: its pipeline, the pipeline file's folder, the state dir, and the pipeline's
    sinks (``SinkSpec``s), for a transform that reads back what they stored (``enrich``), with how long it waits
    for one another process holds (``sink_wait``)."""

    pipeline: str
    base_dir: Path
    state_dir: Path
    sinks: tuple[Any, ...] = ()
    sink_wait: float = 0.0


def with_defaults(options: dict[str, Option], settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with every optional option's default filled in, for plugins built without a pipeline file."""
    return {**{name: option.default for name, option in options.items() if not option.required}, **settings}


class Source:
    """Delivers batches of one dataset for a stream and a time window.

    Subclasses set ``name``, ``datasets``, ``timeframes`` (what ``ohlcv`` offers) and ``options``, and
    implement ``fetch``. Network sources set ``network = True`` and accept the ``base_url`` setting.
    """

    name: ClassVar[str]
    datasets: ClassVar[tuple[str, ...]] = ("ohlcv",)
    timeframes: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[dict[str, Option]] = {}
    network: ClassVar[bool] = False
    live: ClassVar[tuple[str, ...]] = ()  # datasets it can follow live (``etl stream``)
    # Of those, the ones ``fetch`` cannot serve (no REST history: liquidations): a disconnect is a recorded gap.
    live_only: ClassVar[tuple[str, ...]] = ()
    # Per live dataset, an id column whose integer values are consecutive (Binance's aggregate trade id): a jump
    # between live rows is a hole the follower heals from ``fetch`` at once.
    live_sequence: ClassVar[dict[str, str]] = {}
    requires_symbols: ClassVar[bool] = True

    def __init__(self, config: SourceConfig):
        self.config = config
        self.settings = with_defaults(self.options, config.settings)

    @property
    def base_url(self) -> str | None:
        return self.settings.get("base_url")

    @property
    def stored_name(self) -> str:
        """The ``source`` column of this source's rows: its plugin name, unless it is a second way into a
        venue whose rows must mix with that venue's own (``binance_archive`` stores ``binance``)."""
        return self.name

    def check(self) -> None:
        """Validate settings beyond their declared types; raise ConfigError. No network here."""

    def check_inputs(self) -> None:
        """``etl validate`` only: the local inputs a run will read are there (files, say); raise ConfigError.

        No network. ``etl run`` does not call it: an input missing at run time fails its own stream only.
        """

    def list_symbols(self, volumes: bool = False) -> list[Listing]:
        """Every symbol the venue lists for this source's market, delisted ones included where it still lists them;
        with ``volumes``, each with its 24h quote volume (``top`` ranks by it; it may cost a ticker request).

        Optional: a source that implements it accepts a selector as ``symbols`` (``etl.selectors``), resolved at
        the start of every run. Raise ``SourceError`` (or a subclass) when the listing cannot be read.
        """
        raise NotImplementedError

    @classmethod
    def lists_symbols(cls) -> bool:
        return cls.list_symbols is not Source.list_symbols

    def streams(self) -> list[Stream]:
        """The streams this configuration asks for; by default symbols x timeframes."""
        from .datasets import dataset

        if dataset(self.config.dataset).has_timeframe:
            return [
                Stream(self.config.dataset, symbol, timeframe)
                for symbol in self.config.symbols
                for timeframe in self.config.timeframes
            ]
        return [Stream(self.config.dataset, symbol) for symbol in self.config.symbols]

    def row_interval_ms(self, stream: Stream) -> int:
        """Widest usual spacing of rows, used to turn a transform's warm-up rows into time.

        Without a timeframe it errs wide (funding settles every 8 hours on most venues, hourly on some):
        reading a little more history is cheap, reading too little makes features wrong.
        """
        if stream.timeframe:
            return timeframe_ms(stream.timeframe)
        return 8 * HOUR if stream.dataset == "funding" else 24 * HOUR

    def warmup_start(self, stream: Stream, start: int, rows: int) -> int:
        """A first guess of where ``rows`` rows before ``start`` begin, so one read usually covers the warm-up
        and the window; the runner reads further back (``history``) when missing bars made it too short."""
        return start - rows * self.row_interval_ms(stream)

    def history(self, stream: Stream, before: int, rows: int) -> Iterator[pl.DataFrame] | None:
        """The last ``rows`` rows with ``ts < before``, ascending, for a source that can read them directly
        (a file); more rows are fine, the runner keeps the last ``rows``.

        ``None`` (the default) lets the runner page backwards through ``fetch`` in growing windows until it
        has them or the series has started: warm-up is counted in rows, because real series miss bars.
        """
        return None

    def count(self, stream: Stream, metric: str, n: int) -> None:
        """Add ``n`` to a counter of the current run (rows dropped as unusable, requests clamped...)."""
        from .report import current_tally

        tally = current_tally()
        if tally is not None:
            tally.count(stream, metric, n)

    def gap(self, stream: Stream, start: int, end: int, rows: int) -> None:
        """Record ``[start, end)`` as a gap of the current run: ``rows`` rows exist there that the source cannot
        give. Only for streams without a timeframe: the core finds the missing bars of the others on their grid."""
        from .gaps import Gap
        from .report import current_tally

        tally = current_tally()
        if tally is not None:
            tally.gaps(stream, [Gap(start, end, rows)])

    def fetch(self, stream: Stream, start: int, end: int) -> Iterator[pl.DataFrame]:
        """Yield the stream's rows with ``start <= ts < end`` (UTC ms) as DataFrames, ascending in time.

        Batches are in the dataset's schema (``etl.datasets`` fills source, symbol and timeframe and
        converts epoch-ms ``ts``); only closed intervals, never the candle still forming.
        """
        raise NotImplementedError

    def trading_bars(self, stream: Stream, start: int, end: int) -> pl.Series | None:
        """Bar starts (UTC datetimes) that should exist in ``[start, end)``, for gap detection.

        ``None`` (the default) means every interval of the timeframe grid; markets with sessions and
        holidays return their calendar's bars so a closed market is not reported as a gap.
        """
        return None

    def plan(self, stream: Stream, start: int, end: int) -> Iterator[str]:
        """Describe, without fetching anything, what ``fetch`` would request (``etl backfill --dry-run``).

        Sources whose downloads cost money or time (requester-pays archives) list objects, bytes and cost.
        """
        from .timeframes import iso

        yield f"{stream.label}: {iso(start)} .. {iso(end)}"

    def subscriptions(self, streams: list[Stream]) -> list[Subscription]:
        """Live sources (``live`` names the datasets, ``etl stream``): the websocket connections for ``streams``.

        The core connects, sends each subscription's messages, pings, replaces silent or broken connections
        with backoff, and heals every stream from ``fetch`` after each (re)connection.
        """
        raise NotImplementedError

    def parse_live(self, message: str | bytes, subscription: Subscription) -> Iterable[tuple[Stream, pl.DataFrame]]:
        """The closed rows one frame holds, per stream, in ``fetch``'s format (never a forming bar).

        Acknowledgements, pings and forming bars give nothing; raise ``etl.live.LiveRejected`` naming the
        streams the venue refused. Rows may repeat or come late: the core keeps each stream in order.

        Instead of a frame, a pair may carry a list of the venue's raw records (a trade's dict): the core
        gathers the records of many messages and makes them one frame with ``live_frame``, so a venue that
        sends one trade a message costs one DataFrame a batch, not one a message.
        """
        raise NotImplementedError

    def live_frame(self, stream: Stream, records: list[Any]) -> pl.DataFrame:
        """The rows of records ``parse_live`` gave as a list, in ``fetch``'s format, in one go."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and clients at the end of a run."""


class BatchContext:
    """What a transform knows about the batch in hand, and how it reports what it did.

    Rows before ``new_from`` are warm-up history the runner prepended; their output is discarded, so
    reports (``count``, ``quarantine``) only consider rows at or after it.
    """

    def __init__(self, stream: Stream, new_from: int, report: Any):
        self.stream = stream
        self.new_from = new_from
        self._report = report
        self.held: int | None = None

    def hold(self, from_ms: int) -> None:
        """Rows at or after ``from_ms`` (UTC ms) are not final yet (their inputs have not arrived): the runner
        stores none of them, keeps the stream's checkpoint there, and computes them again with the next batch
        (or, past ``batch_rows`` of them, in a later run)."""
        self.held = from_ms if self.held is None else min(self.held, from_ms)

    def new_rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        import polars as pl

        from .timeframes import from_ms, ts_literal

        if not frame.height or frame.get_column("ts").min() >= from_ms(self.new_from):
            return frame
        return frame.filter(pl.col("ts") >= ts_literal(self.new_from))

    def count(self, metric: str, n: int) -> None:
        """Add ``n`` to a counter shown in the run summary and ledger (e.g. ``dedup_conflicts``)."""
        if n:
            self._report.count(self.stream, metric, n)

    def quarantine(self, rows: pl.DataFrame, transform: str) -> None:
        """Move rows (with a ``reason`` column) to the pipeline's quarantine; never silently dropped."""
        rows = self.new_rows(rows)
        if rows.height:
            self._report.quarantine(self.stream, rows, transform)


class Transform:
    """Maps a batch to a batch for one stream.

    ``warmup`` says how many rows of history before the window make the output exact; the runner
    prepends them and keeps only the new rows of the result.
    """

    name: ClassVar[str]
    options: ClassVar[dict[str, Option]] = {}
    datasets: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, settings: dict[str, Any], context: PluginContext):
        self.settings = with_defaults(self.options, settings)
        self.context = context

    def check(self) -> None:
        """Validate settings beyond their declared types; raise ConfigError."""

    def warmup(self, stream: Stream) -> int:
        """Rows of history before the window this transform needs for exact output."""
        return 0

    def output_stream(self, stream: Stream) -> Stream:
        """The stream as the next transform sees it (a resample changes its timeframe)."""
        return stream

    def input_rows(self, stream: Stream, output_rows: int) -> int:
        """Input rows needed before the window to give ``output_rows`` rows of output history, exactly.

        The runner walks the chain backwards with this, so a transform after a resample gets its warm-up
        in its own bars.
        """
        return self.warmup(stream) + output_rows

    def apply(self, frame: pl.DataFrame, batch: BatchContext) -> pl.DataFrame:
        raise NotImplementedError


class Sink:
    """Writes batches idempotently: an upsert on the dataset key, committed atomically per batch.

    ``open`` may create files and connect; construction must not (``etl validate`` writes nothing).
    """

    name: ClassVar[str]
    options: ClassVar[dict[str, Option]] = {}

    def __init__(self, settings: dict[str, Any], context: PluginContext):
        self.settings = with_defaults(self.options, settings)
        self.context = context

    def check(self) -> None:
        """Validate settings beyond their declared types; raise ConfigError."""

    def open(self) -> None:
        """Connect or create what the sink needs; called once per run before the first write."""

    def store(self, frame: pl.DataFrame, dataset: Dataset, table: str) -> None:
        """What the core calls with each batch; ``write`` gets it only if it holds rows, without the columns
        that have no value yet (polars ``Null`` gives a store no type), and with every key column present and
        never null. Checked here once, so no sink repeats it and none forgets it.
        """
        import polars as pl

        frame = frame.select([name for name, dtype in frame.schema.items() if dtype != pl.Null])
        if not frame.height:
            return
        missing = [column for column in dataset.key if column not in frame.columns]
        if missing:
            raise SinkError(f"{self.name} table {table!r}: the batch lacks key column(s) {', '.join(missing)}")
        for column in dataset.key:
            nulls = frame[column].null_count()
            if nulls:
                raise SinkError(f"{self.name} table {table!r}: key column {column!r} is null in {nulls} row(s)")
        self.write(frame, dataset, table)

    def write(self, frame: pl.DataFrame, dataset: Dataset, table: str) -> None:
        """Upsert ``frame`` (rows, typed columns, whole keys: see ``store``) into ``table`` in one transaction."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush and disconnect; called once per run."""

    def request_file(self) -> Path | None:
        """For a store one process writes at a time (it raises ``SinkBusyError`` for the others): the file a process
        waiting for it keeps fresh, so that ``etl stream`` hands it over (``etl.handoff``). None (the default)
        where writers share the store."""
        return None

    def stored(self, dataset: Dataset, table: str) -> list[StoredStream] | None:
        """What ``table`` holds per stream (``etl status --stored``): rows, first and last ``ts``, and bytes
        where the store can tell. None (the default) when the sink cannot be read back; an empty list when the
        table does not exist. Reads only, without ``open``: it creates nothing, even a missing file."""
        return None

    def prune(self, dataset: Dataset, table: str, match: dict[str, str], before: int | None) -> int:
        """Delete the rows of ``table`` whose stream columns equal ``match`` (``source`` and ``symbol``), only
        those with ``ts`` before ``before`` when given, in one transaction where the store has them; return
        how many went. For ``etl prune``, which refuses a pipeline with a sink that does not override this.
        Deleting what is already gone deletes nothing: a killed prune finishes when run again."""
        raise SinkError(f"sink {self.name!r} cannot remove rows")

    def read(self, dataset: Dataset, table: str, selection: Selection) -> pl.LazyFrame | None:
        """The rows of ``table`` that ``selection`` picks, for ``etl.read``: the store's columns, ``ts`` as a
        datetime or the store's text (``etl.read`` gives both the dataset's types). None (the default) when the
        sink cannot be read back; an empty frame when the table does not exist. Reads only, without ``open``."""
        return None

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Several ``read`` calls in a row share what reading needs (the DuckDB sink keeps one connection open:
        opening the file costs more than a small query). By default each ``read`` stands alone."""
        yield
