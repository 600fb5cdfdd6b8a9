"""The ``enrich`` transform: funding, open interest, positioning and liquidations that the pipeline's own sink
already holds, brought onto each OHLCV bar as of the bar's time.

    [[pipelines.btc_1h.transforms]]
    plugin = "enrich"
    from_sink = "duckdb"              # one of the pipeline's sinks (its plugin name), read back with Sink.read
    datasets = ["funding", "open_interest", "positioning", "liquidations"]
    # tables = { funding = "funding_8h" }   # default: each dataset's name
    # source = "binance"              # their ``source`` column; default: the bars' own
    # tolerance = "8h"                # open interest and positioning older than this are null
    # positioning_timeframe = "5m"    # default: the bars' timeframe
    # wait = ["funding", "open_interest", "positioning"]   # the inputs a bar waits for; default: all of them
    # every = { funding = "8h" }      # rows come this often: a stored row at T proves none is missing before T + every
    # gaps_from = "../capture/.etl"   # state dir whose ledger records the liquidation capture; default: this one's

For a bar starting at ``ts`` (``catalog.ENRICH`` lists the columns):

- ``funding_rate`` (and the funding extras) of the last settlement at or before ``ts``, however old;
- ``open_interest`` and the positioning columns of the last row at or before ``ts``, null when older than
  ``tolerance``; positioning rows of ``positioning_timeframe`` only;
- ``liquidation_{buy,sell}_{size,notional}``: size and price * size of the liquidations with ``ts`` in the bar,
  per side, 0 when there were none; null when nobody listened to the whole bar (see below).

A column whose name the bars already have comes as ``<dataset>_<name>`` (positioning's ``taker_buy_volume``).

Staleness: a bar is stored only once every input in ``wait`` has arrived for it. An as-of input has arrived for
a bar at ``ts`` when it holds a row at or after ``ts`` (or, with ``every``, at or after ``ts - every``): rows
arrive in time order, so no later row can change the bar's value; liquidations have arrived when one at or
after the bar's end is stored. From the first bar that is not complete, the transform holds the batch back
(``BatchContext.hold``): none of those bars is stored, the stream's checkpoint stays at that bar, and they are
computed again with the next batch (``etl stream`` stores them once their inputs arrive) or by the next run.
The run summary counts them (``held rows``); a backfill that ends holding some stays unfinished, for
``etl backfill --resume``. So the stored table always equals a one-shot as-of join of the complete inputs. A
dataset stored late or never (a quiet symbol's liquidations) holds every bar: leave it out of ``wait``.

Liquidations exist only where a capture listened (``etl stream``: no venue serves their history), so a bar with
no liquidation is 0 only when one listened to all of it. Two things tell where nobody did, and a bar that
overlaps either gets null liquidation columns: the time before the first liquidation of the symbol stored (the
bar holding it too: the capture may have begun in it), and the gaps the ledger recorded for the liquidations
stream of that symbol and source, by whichever pipeline captured it (a connection away, a stream stopped). The
ledger has a gap before any liquidation after it is stored, so a bar complete by the rule above never learns of
a gap later. The ledger is this project's state dir's, or ``gaps_from``'s when another project captures.

Inputs are read per stream through the sink's ``Sink.read``: funding whole, the others in windows of at least a
month of bars (see ``EnrichTransform._read``), again only when a batch reaches past what was read. The joins are
polars' ``join_asof`` and ``group_by_dynamic``: no Python runs per row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import etl

from . import catalog

AS_OF = ("funding", "open_interest", "positioning")
LIQUIDATIONS = "liquidations"
KEYS = ("source", "symbol", "timeframe", "ts")
DAY_MS = 86_400_000
WINDOW_MS = 31 * DAY_MS  # the least span of bars one read of open interest, positioning or liquidations serves
_LOOK_BACK = (DAY_MS, 8 * DAY_MS, 64 * DAY_MS, 512 * DAY_MS)  # how far back a liquidation before the bars is sought
_EARLIEST, _LATEST = -(2**62), 2**62


def _check_datasets(value: list[str]) -> None:
    if not value:
        raise ValueError(f"name at least one of {', '.join(catalog.ENRICH)}")
    repeated = sorted({name for name in value if value.count(name) > 1})
    if repeated:
        raise ValueError(f"{repeated[0]!r} is listed twice")


def _check_duration(value: str) -> None:
    from etl.timeframes import parse_duration

    parse_duration(value)


def _check_timeframe(value: str) -> None:
    from etl.timeframes import TIMEFRAMES

    if value not in TIMEFRAMES:
        raise ValueError(f"not a timeframe; valid: {', '.join(TIMEFRAMES)}")


class EnrichTransform(etl.Transform):
    name = "enrich"
    datasets = ("ohlcv",)
    options = {
        "from_sink": etl.Option(str, help="the pipeline's sink (its plugin name) that holds the other datasets"),
        "datasets": etl.Option(list, item_type=str, choices=tuple(catalog.ENRICH), check=_check_datasets,
                               help="the datasets to bring onto each bar"),
        "tables": etl.Option(dict, {}, help="table of each dataset in the sink; default: the dataset's name"),
        "source": etl.Option(str, None, help="the source column of the rows to bring; default: the bars' own"),
        "tolerance": etl.Option(str, "8h", check=_check_duration,
                                help="open interest and positioning older than this are null"),
        "positioning_timeframe": etl.Option(str, None, check=_check_timeframe,
                                            help="the positioning period to bring; default: the bars' timeframe"),
        "wait": etl.Option(list, None, item_type=str, help="the inputs whose lag holds bars back; default: all"),
        "every": etl.Option(dict, {}, help="how often each as-of dataset's rows come, e.g. { funding = \"8h\" }"),
        "gaps_from": etl.Option(str, None, help="the state dir whose ledger records the liquidation capture's gaps; "
                                                "default: this project's"),
    }

    def __init__(self, settings: dict[str, Any], context: etl.PluginContext):
        super().__init__(settings, context)
        self._inputs: dict[str, _Input] = {}  # what was read of each dataset for this stream
        self._heard_before = False  # a liquidation is stored before the bars: none after it is unheard for that

    def check(self) -> None:
        from etl.errors import ConfigError

        chosen = self.settings["datasets"]
        for key in ("tables", "every", "wait"):
            unknown = [name for name in self.settings[key] or () if name not in chosen]
            if unknown:
                raise ConfigError(f"enrich: {key} names {unknown[0]!r}, which is not in datasets "
                                  f"({', '.join(chosen)})")
        gaps_from = self.settings["gaps_from"]
        if gaps_from is not None and not self._ledger_dir().is_dir():
            raise ConfigError(f"enrich: gaps_from {gaps_from!r} is not a directory (it names the state dir of the "
                              f"project that captures the liquidations)")
        for name, table in self.settings["tables"].items():
            if not isinstance(table, str) or not table:
                raise ConfigError(f"enrich: tables.{name} must be a table name, not {table!r}")
        for name, every in self.settings["every"].items():
            if name not in AS_OF:
                raise ConfigError(f"enrich: every.{name}: only {', '.join(AS_OF)} come at a regular pace")
            try:
                _check_duration(every)
            except (ValueError, AttributeError):
                raise ConfigError(f"enrich: every.{name} must be a duration such as 8h, not {every!r}") from None
        self._sink()

    def _sink(self) -> etl.Sink:
        """The sink ``from_sink`` names among the pipeline's, built (not opened) for reading."""
        from etl.errors import ConfigError
        from etl.plugins import registry

        wanted = self.settings["from_sink"]
        specs = [spec for spec in self.context.sinks if spec.plugin == wanted]
        if not specs:
            have = ", ".join(spec.plugin for spec in self.context.sinks) or "none"
            raise ConfigError(f"enrich: from_sink {wanted!r} is not a sink of pipeline {self.context.pipeline} "
                              f"(its sinks: {have})")
        cls = registry().get("sink", wanted)
        if cls.read is etl.Sink.read:
            raise ConfigError(f"enrich: from_sink {wanted!r} cannot be read back (it has no Sink.read)")
        return cls(dict(specs[0].settings), self.context)

    def apply(self, frame: Any, batch: etl.BatchContext) -> Any:
        if not frame.height:
            return frame
        bars = _Bars.of(frame, batch.stream, self.settings["source"])
        self._read(bars)
        enriched = frame
        for name in self.settings["datasets"]:
            enriched = _join(name, enriched, self._inputs[name], bars, self.settings)
        held = self._incomplete_from(bars, batch)
        if held is not None:
            batch.hold(held)
        return enriched

    def _read(self, bars: _Bars) -> None:
        """Read the inputs this batch needs that were not read yet: funding whole (the rate in force may be old),
        the others from the first bar (less the tolerance) over a window of at least a month, so a run reads
        each about once a month of bars, never the rest of a long history for every chunk of a backfill. A
        window that shows no row late enough to prove the last bar complete is read again to the end of what is
        stored: the input lags, or has a gap. A sink file another process holds (``etl stream`` writing it) is
        waited for, up to the pipeline's ``sink_wait``, and asked for (``etl.handoff``)."""
        from etl.handoff import while_busy

        stale = [name for name in self.settings["datasets"] if not self._serves(name, bars)]
        if stale:
            sink = self._sink()
            while_busy(lambda: self._read_stale(sink, bars, stale), self.context.sink_wait, [sink.request_file()])

    def _read_stale(self, sink: etl.Sink, bars: _Bars, stale: list[str]) -> None:
        with sink.reading():
            for name in stale:
                start = None if name == "funding" else bars.first - self._lookback(name)
                end = None if name == "funding" else max(bars.last_end + DAY_MS, bars.first + max(
                    WINDOW_MS, 4 * (bars.last_end - bars.first)))
                self._inputs[name] = _read(sink, name, self.settings, bars, start, end)
                if end is not None and not self._covers([name], bars.last_start, bars.last_end):
                    self._inputs[name] = _read(sink, name, self.settings, bars, start, None)
                if name == LIQUIDATIONS:
                    read = self._inputs[name]
                    self._inputs[name] = dataclasses.replace(read, unheard=self._unheard(sink, bars, read))

    def _serves(self, name: str, bars: _Bars) -> bool:
        """Whether what was read of input ``name`` reaches over this batch and proves its last bar complete."""
        read = self._inputs.get(name)
        if read is None or (read.end is not None and read.end < bars.last_end):
            return False
        return bool(self._covers([name], bars.last_start, bars.last_end))

    def _unheard(self, sink: etl.Sink, bars: _Bars, read: _Input) -> Any:
        """The windows (epoch ms, merged, in order) of the bars' symbol that no capture listened to: from the
        beginning to the first liquidation stored, unless one precedes the bars, and the ledger's gaps."""
        from etl.ledger import Ledger

        windows = []
        if not self._stored_before(sink, bars):
            windows.append((_EARLIEST, read.first if read.first is not None else _LATEST))
        ledger = Ledger(self._ledger_dir())
        try:
            windows += ledger.gaps_of(f"{LIQUIDATIONS}/{bars.symbol}", bars.source)
        finally:
            ledger.close()
        return _merged(windows)

    def _stored_before(self, sink: etl.Sink, bars: _Bars) -> bool:
        """Whether a liquidation of the symbol is stored before the first bar: windows ever wider back from it
        (a read materializes its rows, and the whole history before a late chunk may be large), then all before.
        Batches come in time order, so once one is found it precedes every later batch too."""
        for back in () if self._heard_before else (*_LOOK_BACK, None):
            start = None if back is None else bars.first - back
            if _read(sink, LIQUIDATIONS, self.settings, bars, start, bars.first).first is not None:
                self._heard_before = True
                break
        return self._heard_before

    def _ledger_dir(self) -> Any:
        from pathlib import Path

        given = self.settings["gaps_from"]
        return self.context.state_dir if given is None else Path(self.context.base_dir, given)

    def _lookback(self, name: str) -> int:
        from etl.timeframes import parse_duration

        return 0 if name == LIQUIDATIONS else parse_duration(self.settings["tolerance"])

    def _covers(self, names: list[str], start: Any, end: Any) -> Any:
        """Whether the inputs ``names`` have arrived for bars of these starts and ends (ms, ints or Series), by
        the rule of the module docstring: an as-of input once it holds a row at or after the bar's start (less
        ``every``), liquidations once they hold one at or after the bar's end."""
        from etl.timeframes import parse_duration

        arrived = True
        for name in names:
            last = self._inputs[name].last
            if last is None:
                return False if isinstance(start, int) else start.is_in([])
            if name == LIQUIDATIONS:
                arrived = arrived & (end <= last)
            else:
                every = self.settings["every"].get(name)
                arrived = arrived & (start < last + (parse_duration(every) if every else 1))
        return arrived

    def _incomplete_from(self, bars: _Bars, batch: etl.BatchContext) -> int | None:
        """The first new bar some input in ``wait`` has not arrived for."""
        waited = self.settings["wait"] if self.settings["wait"] is not None else self.settings["datasets"]
        if self._covers(waited, bars.last_start, bars.last_end):
            return None
        starts = bars.starts.dt.epoch("ms")
        late = starts.filter(~self._covers(waited, starts, bars.ends()) & (starts >= batch.new_from))
        return int(late.min()) if late.len() else None


@dataclass(frozen=True)
class _Input:
    """What was read of one input: its rows with ``ts`` before ``end`` (None: all stored), the first and last
    one's ts; of liquidations, the windows nobody listened to as well (``EnrichTransform._unheard``)."""

    rows: Any
    end: int | None
    first: int | None
    last: int | None
    unheard: Any = None


def _read(sink: etl.Sink, name: str, settings: dict[str, Any], bars: _Bars, start: int | None,
          end: int | None) -> _Input:
    from etl.datasets import dataset
    from etl.reading import stored_rows
    from etl.stored import Selection

    table = settings["tables"].get(name, name)
    rows = stored_rows(sink, dataset(name), table, Selection(bars.source, (bars.symbol,), start, end))
    if rows is None:
        raise etl.PermanentError(f"enrich: sink {sink.name!r} cannot read back table {table!r}")
    frame = _usable(rows.collect(), name, settings, bars)
    if not frame.height:
        return _Input(frame, end, None, None)
    return _Input(frame, end, _ms(frame["ts"].min()), _ms(frame["ts"].max()))


class _Bars:
    """What the joins need to know about a batch of bars of one stream."""

    def __init__(self, starts: Any, symbol: str, source: str, timeframe: str):
        from etl.timeframes import next_bar

        self.starts, self.symbol, self.source, self.timeframe = starts, symbol, source, timeframe
        self.first, self.last_start = _ms(starts.min()), _ms(starts.max())
        self.last_end = next_bar(self.last_start, timeframe)

    @classmethod
    def of(cls, frame: Any, stream: etl.Stream, source: str | None) -> _Bars:
        """The bars of a batch; one stream's, as the runner hands them over."""
        from .frames import varying

        several = varying(frame, ["source", "symbol", "timeframe"])
        if several:
            raise etl.PermanentError(f"enrich: the batch of {stream.label} holds several values of {several[0]!r}; "
                                     f"enrich joins one stream at a time")
        return cls(frame["ts"], frame["symbol"][0], source or frame["source"][0], frame["timeframe"][0])

    def ends(self) -> Any:
        """Each bar's end in UTC ms (months differ in length), as a Series beside ``starts``."""
        import polars as pl

        from etl.timeframes import next_expr

        return pl.select(next_expr(pl.lit(self.starts.dt.epoch("ms")), self.timeframe)).to_series()


def _usable(rows: Any, name: str, settings: dict[str, Any], bars: _Bars) -> Any:
    """The stored rows of one input, for the bars' symbol: positioning of one period, NaN read as null."""
    import polars as pl

    if name == "positioning":
        period = settings["positioning_timeframe"] or bars.timeframe
        kept = rows.filter(pl.col("timeframe") == period)
        if rows.height and not kept.height:
            periods = ", ".join(sorted(rows["timeframe"].unique()))
            raise etl.PermanentError(f"enrich: positioning of {bars.symbol} has no {period} rows (it has {periods}); "
                                     f"choose one with positioning_timeframe")
        rows = kept
    if name == LIQUIDATIONS:
        side = pl.col("side").str.to_lowercase()
        rows = rows.select("ts", (side == "buy").alias("buy"), (side == "sell").alias("sell"), "size",
                           (pl.col("price") * pl.col("size")).alias("notional"))
    floats = [column for column, dtype in rows.schema.items() if dtype.is_float()]
    return rows.with_columns(pl.col(floats).fill_nan(None)) if floats else rows


def _span(rows: Any, start: int, end: int, before: bool) -> Any:
    """The rows (sorted by ``ts``) in ``[start, end)``, and with ``before`` the last one before ``start`` too:
    a window read serves several batches, and each joins only its own part of it."""
    from etl.timeframes import from_ms

    ts = rows["ts"]
    first = ts.search_sorted(from_ms(start), side="left")
    first = max(first - 1, 0) if before else first
    return rows.slice(first, ts.search_sorted(from_ms(end), side="left") - first)


def _join(name: str, frame: Any, read: _Input, bars: _Bars, settings: dict[str, Any]) -> Any:
    if name == LIQUIDATIONS:
        columns = [_free_name(LIQUIDATIONS, column, frame) for column in catalog.ENRICH[LIQUIDATIONS]]
        summed = _liquidations(frame, _span(read.rows, bars.first, bars.last_end, before=False), bars)
        return _unheard_nulled(summed, columns, bars, read.unheard)
    rows = _span(read.rows, bars.first, bars.last_end, before=True)
    values = [column for column in rows.columns if column not in KEYS]
    renamed = {column: _free_name(name, column, frame) for column in values}
    right = rows.select("ts", *values).rename(renamed)
    tolerance = None if name == "funding" else timedelta(milliseconds=_tolerance(settings))
    return frame.join_asof(right, on="ts", strategy="backward", tolerance=tolerance, check_sortedness=False)


def _tolerance(settings: dict[str, Any]) -> int:
    from etl.timeframes import parse_duration

    return parse_duration(settings["tolerance"])


def _liquidations(frame: Any, rows: Any, bars: _Bars) -> Any:
    """Size and notional liquidated per side within each bar; 0 where none was (the bar's input is complete or
    the bar is held)."""
    import polars as pl

    sums = [
        pl.col(measure).filter(pl.col(side)).sum().alias(_free_name(LIQUIDATIONS, f"liquidation_{side}_{measure}",
                                                                    frame))
        for side in ("buy", "sell") for measure in ("size", "notional")
    ]
    every = "1mo" if bars.timeframe == "1M" else bars.timeframe
    window = rows.group_by_dynamic("ts", every=every, closed="left", label="left").agg(sums)
    joined = frame.join(window, on="ts", how="left", maintain_order="left")
    return joined.with_columns(pl.col(column).fill_null(0.0) for column in window.columns if column != "ts")


def _unheard_nulled(frame: Any, columns: list[str], bars: _Bars, unheard: Any) -> Any:
    """The liquidation ``columns`` null on bars that overlap a window nobody listened to. The windows are merged,
    so only the last one starting before a bar's end can overlap it."""
    import polars as pl

    if not unheard.height:
        return frame
    starts = bars.starts.dt.epoch("ms")
    last = unheard["start"].search_sorted(bars.ends(), side="left").cast(pl.Int64) - 1
    overlaps = (last >= 0) & (unheard["end"].gather(last.clip(0)) > starts)
    return frame.with_columns(pl.when(overlaps).then(None).otherwise(pl.col(column)).alias(column)
                              for column in columns)


def _merged(windows: list[tuple[int, int]]) -> Any:
    """``(start, end)`` windows as a frame of disjoint ones in time order."""
    import polars as pl

    frame = pl.DataFrame(windows, schema={"start": pl.Int64, "end": pl.Int64}, orient="row").sort("start")
    reach = pl.col("end").cum_max().shift(1)
    return (frame.with_columns((pl.col("start") > reach).fill_null(True).cum_sum().alias("group"))
            .group_by("group", maintain_order=True).agg(pl.col("start").min(), pl.col("end").max()).drop("group"))


def _free_name(dataset: str, column: str, frame: Any) -> str:
    return column if column not in frame.columns else f"{dataset}_{column}"


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000)
