"""The source conformance suite: a plugin author subclasses ``SourceConformance`` and pytest runs it all.

    from etl.testing import SourceConformance

    class TestCoinbase(SourceConformance):
        plugin = "coinbase"
        symbols = ("BTC-USD",)
        timeframes = ("1h",)
        start, end = "2024-01-01", "2024-01-05"

        @pytest.fixture
        def source_server(self, fake_server):
            return fake_server(coinbase_handler)   # recorded responses; base_url is set from it

Rows are read the way the runner reads them (``fetch`` per stream, then ``etl.datasets.conform``), and
the market-data invariants are checked on what the source itself yielded, before the runner's safety
nets (window filter, key de-duplication) could hide a defect.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from etl.base import Source, Stream
from etl.config import BASE_URL_OPTION
from etl.errors import ConfigError, PermanentError
from etl.options import Option
from etl.timeframes import floor_ts, iso, next_bar, now_ms, parse_time, timeframe_ms

from . import checks
from .pipelines import run_cli, single_pipeline, write_pipeline
from .server import FakeServer, Reply
from .suite import PluginSuite

if TYPE_CHECKING:
    import polars as pl

CONFORMANCE_DB = "conformance.duckdb"


@dataclass
class WindowRead:
    """What ``fetch`` yielded for one stream and window: the raw batches and the conformed rows."""

    stream: Stream
    start: int
    end: int
    batches: list[pl.DataFrame]
    conformed: list[pl.DataFrame]
    rows: pl.DataFrame

    @property
    def label(self) -> str:
        return f"{self.stream.label} [{iso(self.start)}, {iso(self.end)})"


def read_window(source: Source, stream: Stream, start: int, end: int) -> WindowRead:
    """Fetch ``[start, end)`` of ``stream`` and conform each non-empty batch as the runner does.

    A source whose paging never stops is cut off after ``batch_limit`` batches, with a failure.
    """
    import polars as pl

    from etl.datasets import conform, dataset, empty_frame

    schema = dataset(stream.dataset)
    limit = batch_limit(source, stream, start, end)
    batches = []
    for batch in source.fetch(stream, start, end):
        batches.append(batch)
        if len(batches) > limit:
            raise AssertionError(f"{stream.label} [{iso(start)}, {iso(end)}): fetch yielded more than {limit} "
                                 f"batches; does its paging stop at the end of the window?")
    conformed = [conform(batch, schema, stream, source.stored_name) for batch in batches if batch.height]
    rows = pl.concat(conformed, how="diagonal_relaxed") if conformed else empty_frame(schema)
    return WindowRead(stream, start, end, batches, conformed, rows)


def batch_limit(source: Source, stream: Stream, start: int, end: int) -> int:
    """Twice the rows the window can hold, plus slack: more batches than that means paging in circles."""
    intervals = -(-(end - start) // source.row_interval_ms(stream))
    return 2 * max(intervals, 0) + 100


class SourceConformance(PluginSuite):
    """Conformance of a source plugin over one fixed window of history.

    Set ``plugin``, ``symbols``, ``start`` and ``end`` (ISO dates or datetimes), and ``timeframes`` for a
    dataset that has them (default: the first one the source offers). Network sources must get a local
    server: override ``source_server`` (its ``url`` becomes ``base_url``) or put ``base_url`` in
    ``plugin_options``; this suite never reaches the internet. Set ``unknown_symbol`` to a symbol your
    fake server rejects to check that it fails only its own stream, with a message naming it.
    """

    kind = "source"
    base_class = Source
    dataset: ClassVar[str | None] = None
    symbols: ClassVar[tuple[str, ...]] = ()
    timeframes: ClassVar[tuple[str, ...]] = ()
    start: ClassVar[str]
    end: ClassVar[str]
    min_rows: ClassVar[int] = 3
    unknown_symbol: ClassVar[str | None] = None
    live_timeframe: ClassVar[str | None] = None  # the live check's timeframe; default the first of timeframes
    live_bars: ClassVar[int] = 3
    live_clock: ClassVar[float] = 1  # > 1: ETL_CLOCK runs that many times the wall clock during the live check

    @pytest.fixture
    def source_server(self) -> Any:
        """The local server standing in for the API (a FakeServer enables the fault-injection test)."""
        return None

    @pytest.fixture
    def ws_url(self) -> str | None:
        """A live source's websocket endpoint on a local fake of the venue (its ``ws_url`` option); None skips
        the live check."""
        return None

    @pytest.fixture
    def valid_options(self, plugin_options: dict[str, Any], source_server: Any) -> dict[str, Any]:
        options = dict(plugin_options)
        if self.plugin_class().network and "base_url" not in options:
            if source_server is None:
                pytest.fail(f"{self.plugin} is a network source: override the source_server fixture (or set "
                            f"base_url in plugin_options) so the suite talks to a local server, never the internet")
            options["base_url"] = source_server.url
        return options

    @pytest.fixture
    def source(self, tmp_path: Path, valid_options: dict[str, Any]) -> Any:
        """The source built from a validated pipeline file, closed after the test."""
        instance = self.build_source(tmp_path, valid_options)
        yield instance
        instance.close()

    @pytest.fixture
    def window(self, source: Source) -> dict[Stream, WindowRead]:
        """The configured window, read once per stream."""
        start, end = parse_time(self.start), parse_time(self.end)
        return {stream: read_window(source, stream, start, end) for stream in source.streams()}

    def dataset_name(self) -> str:
        return self.dataset or self.plugin_class().datasets[0]

    def stream_timeframes(self) -> list[str]:
        cls = self.plugin_class()
        return list(self.timeframes or cls.timeframes[:1] or ("1h",))

    def declared_options(self) -> dict[str, Option]:
        options = super().declared_options()
        if self.plugin_class().network:
            options["base_url"] = BASE_URL_OPTION
        return options

    def pipeline(self, folder: Path, options: dict[str, Any], symbols: tuple[str, ...] | None = None,
                 timeframes: tuple[str, ...] | None = None) -> dict[str, Any]:
        from etl.datasets import dataset

        source: dict[str, Any] = {
            "plugin": self.plugin,
            "dataset": self.dataset_name(),
            "symbols": list(symbols or self.symbols),
            "start": self.start,
            "end": self.end,
            **options,
        }
        if dataset(self.dataset_name()).has_timeframe:
            source["timeframes"] = list(timeframes or self.stream_timeframes())
        return single_pipeline(source, [{"plugin": "duckdb", "path": CONFORMANCE_DB}])

    def build_source(self, folder: Path, options: dict[str, Any], symbols: tuple[str, ...] | None = None,
                     timeframes: tuple[str, ...] | None = None) -> Any:
        """A source built from a validated pipeline file, as the runner builds it."""
        from etl.plugins import registry

        (spec,) = self.load(folder, options, symbols=symbols, timeframes=timeframes).pipelines.values()
        instance = registry().get("source", self.plugin)(spec.source)
        instance.check()
        return instance

    def stored_rows(self, folder: Path) -> pl.DataFrame:
        import duckdb

        with duckdb.connect(str(folder / CONFORMANCE_DB), read_only=True) as connection:
            return connection.sql(f'SELECT * FROM "{self.dataset_name()}"').pl()

    def test_validate_touches_no_network(self, tmp_path: Path, valid_options: dict[str, Any]) -> None:
        if not self.plugin_class().network:
            pytest.skip(f"{self.plugin} is not a network source")
        with FakeServer(lambda request: Reply.text("etl validate must not send requests", 500)) as tripwire:
            run = self.validate(tmp_path, {**valid_options, "base_url": tripwire.url})
        assert run.exit_code == 0, f"etl validate failed:\n{run}"
        assert not tripwire.requests, (
            f"etl validate sent {len(tripwire.requests)} request(s), first: {tripwire.requests[0].method} "
            f"{tripwire.requests[0].path}; check() and __init__ must not touch the network"
        )

    def test_window_holds_rows(self, window: dict[Stream, WindowRead]) -> None:
        assert window, f"{self.plugin}.streams() returned no stream for symbols {self.symbols}"
        for read in window.values():
            assert read.rows.height >= self.min_rows, (
                f"{read.label}: {read.rows.height} rows; the suite needs at least {self.min_rows} to prove "
                f"anything (widen start/end or fix the fake server)"
            )

    def test_rows_follow_the_dataset_schema(self, window: dict[Stream, WindowRead]) -> None:
        from etl.datasets import dataset

        for read in window.values():
            checks.check_schema(read.rows, dataset(read.stream.dataset), read.label)

    def test_ts_is_utc_and_ascending(self, window: dict[Stream, WindowRead]) -> None:
        import polars as pl

        for read in window.values():
            for number, batch in enumerate(read.batches, 1):
                if batch.height:
                    checks.check_raw_ts(batch, f"{read.label} batch {number}")
            assert read.rows.schema["ts"] == pl.Datetime("ms", "UTC")
            checks.check_ascending(read.conformed, read.label)

    def test_key_is_unique(self, window: dict[Stream, WindowRead]) -> None:
        from etl.datasets import dataset

        for read in window.values():
            checks.check_key_unique(read.rows, dataset(read.stream.dataset), read.label)

    def test_rows_stay_inside_the_window(self, window: dict[Stream, WindowRead]) -> None:
        for read in window.values():
            checks.check_in_window(read.rows, read.start, read.end, read.label)

    def test_candles_are_consistent(self, window: dict[Stream, WindowRead]) -> None:
        if self.dataset_name() != "ohlcv":
            pytest.skip("only OHLCV has candles")
        for read in window.values():
            checks.check_ohlc(read.rows, read.label)

    def test_bars_start_on_the_timeframe_grid(self, window: dict[Stream, WindowRead]) -> None:
        streams = [read for read in window.values() if read.stream.timeframe]
        if not streams:
            pytest.skip(f"dataset {self.dataset_name()} has no timeframe")
        for read in streams:
            checks.check_on_grid(read.rows, read.stream.timeframe, read.label)

    def test_no_open_candle(self, source: Source) -> None:
        """Asked for a window reaching past now, the source returns only intervals that have closed."""
        for stream in source.streams():
            step = timeframe_ms(stream.timeframe) if stream.timeframe else source.row_interval_ms(stream)
            current = floor_ts(now_ms(), stream.timeframe) if stream.timeframe else now_ms()
            read = read_window(source, stream, current - 3 * step, current + 2 * step)
            checks.check_closed(read.rows, stream.timeframe, now_ms(), read.label)

    def test_adjacent_windows_neither_overlap_nor_leave_a_hole(
        self, source: Source, window: dict[Stream, WindowRead]
    ) -> None:
        """Three windows cut at a row's ``ts`` and just after another row's ``ts`` add up to the whole."""
        import polars as pl

        from etl.datasets import dataset

        for stream, whole in window.items():
            if whole.rows.height < self.min_rows:
                pytest.fail(f"{whole.label}: too few rows ({whole.rows.height}) to cut the window")
            checks.check_in_window(whole.rows, whole.start, whole.end, whole.label)
            ms = whole.rows["ts"].dt.epoch("ms").sort()
            first_cut, second_cut = ms[whole.rows.height // 3], ms[2 * whole.rows.height // 3] + 1
            bounds = [whole.start, first_cut, second_cut, whole.end]
            parts = [read_window(source, stream, a, b) for a, b in itertools.pairwise(bounds)]
            for part in parts:
                checks.check_in_window(part.rows, part.start, part.end, part.label)
            joined = pl.concat([part.rows for part in parts], how="diagonal_relaxed")
            key = list(dataset(stream.dataset).key)
            checks.check_same_rows(joined, whole.rows, key,
                                   f"{stream.label}: windows cut at {iso(first_cut)} and "
                                   f"{iso(second_cut)} versus the whole window")

    def test_rows_before_a_time_are_the_window_rows_before_it(
        self, source: Source, window: dict[Stream, WindowRead]
    ) -> None:
        """Warm-up is counted in rows: the last N rows before a time (``history``, or the core paging back
        through ``fetch``) are the window's last N rows before it."""
        from etl.datasets import conform, dataset
        from etl.warmup import rows_before

        for stream, whole in window.items():
            if whole.rows.height < self.min_rows:
                pytest.fail(f"{whole.label}: too few rows ({whole.rows.height}) to read rows before a time")
            rows = whole.rows.sort("ts", maintain_order=True)
            wanted = rows.height * 2 // 3
            before = int(rows["ts"].dt.epoch("ms")[wanted])
            expected = rows.head(wanted)
            expected = expected.filter(expected["ts"] < rows["ts"][wanted]).tail(wanted // 2)

            def prepare(frame: pl.DataFrame, stream: Stream = stream) -> pl.DataFrame:
                return conform(frame, dataset(stream.dataset), stream, source.stored_name)

            got = rows_before(source, stream, before, expected.height, prepare)
            assert got is not None, f"{stream.label}: no rows before {iso(before)}, expected {expected.height}"
            checks.check_same_rows(got, expected, list(dataset(stream.dataset).key),
                                   f"{stream.label}: the {expected.height} rows before {iso(before)}")

    def test_same_window_twice_gives_same_rows(self, source: Source, window: dict[Stream, WindowRead]) -> None:
        from polars.testing import assert_frame_equal

        for stream, first in window.items():
            again = read_window(source, stream, first.start, first.end)
            try:
                assert_frame_equal(again.rows, first.rows, check_exact=True)
            except AssertionError as exc:
                raise AssertionError(f"{first.label}: a second read differs from the first: {exc}") from None

    def test_window_shorter_than_a_bar_is_empty(self, source: Source, window: dict[Stream, WindowRead]) -> None:
        """No bar starts strictly inside one interval: the source yields nothing and its paging terminates."""
        streams = [read for read in window.values() if read.stream.timeframe and read.rows.height]
        if not streams:
            pytest.skip(f"dataset {self.dataset_name()} has no timeframe")
        for read in streams:
            checks.check_in_window(read.rows, read.start, read.end, read.label)
            first = int(read.rows["ts"].dt.epoch("ms").min())
            inner = read_window(source, read.stream, first + 1, next_bar(first, read.stream.timeframe))
            assert not inner.rows.height, f"{inner.label}: expected no row, got {inner.rows.height}"

    def test_transient_faults_are_retried(
        self, source_server: Any, valid_options: dict[str, Any], window: dict[Stream, WindowRead], tmp_path: Path
    ) -> None:
        """429 with Retry-After, a 503 and a connection reset before the data: the rows come out the same."""
        if not isinstance(source_server, FakeServer):
            pytest.skip("needs source_server to be an etl.testing.FakeServer")
        stream, clean = next(iter(window.items()))
        fresh = self.build_source(tmp_path / "faults", valid_options)
        try:
            before = len(source_server.requests)
            source_server.fail_next(
                Reply.json({"error": "rate limited by the conformance suite"}, 429, {"Retry-After": "0"}),
                Reply.text("Service Unavailable", 503),
                Reply.reset(),
            )
            faulty = read_window(fresh, stream, clean.start, clean.end)
        finally:
            fresh.close()
        sent = len(source_server.requests) - before
        assert sent >= 4, f"the source sent {sent} request(s); the suite queued 3 faults before the data"
        from etl.datasets import dataset

        checks.check_same_rows(faulty.rows, clean.rows, list(dataset(stream.dataset).key),
                               f"{clean.label} read through 429, 503 and a reset")

    def test_unknown_symbol_fails_only_its_stream(self, tmp_path: Path, valid_options: dict[str, Any]) -> None:
        if self.unknown_symbol is None:
            pytest.skip("set unknown_symbol to a symbol the source's server rejects")
        symbols = (self.symbols[0], self.unknown_symbol)
        try:
            project = self.load(tmp_path, valid_options, symbols=symbols)
        except ConfigError as exc:
            assert self.unknown_symbol in str(exc), f"the ConfigError does not name {self.unknown_symbol!r}: {exc}"
            return
        source = self.build_source(tmp_path / "direct", valid_options, (self.unknown_symbol,))
        try:
            stream = source.streams()[0]
            with pytest.raises(PermanentError) as raised:
                list(source.fetch(stream, parse_time(self.start), parse_time(self.end)))
        finally:
            source.close()
        assert self.unknown_symbol in str(raised.value), f"the error does not name the symbol: {raised.value}"
        run = run_cli("run", str(project.path))
        assert run.exit_code == 1, f"a failed stream must exit 1:\n{run}"
        assert f"FAILED conformance {self.dataset_name()}/{self.unknown_symbol}" in run.stdout, str(run)
        stored = self.stored_rows(tmp_path)
        assert set(stored["symbol"]) == {self.symbols[0]}, "the good symbol's rows must land despite the failure"

    def test_pipeline_lands_the_rows_once(self, tmp_path: Path, valid_options: dict[str, Any],
                                          window: dict[Stream, WindowRead]) -> None:
        """``etl run`` stores exactly what fetch yields; a second run adds nothing."""
        import polars as pl

        from etl.datasets import dataset

        path = write_pipeline(tmp_path / "run", self.pipeline(tmp_path, valid_options))
        folder = path.parent
        for attempt in ("first", "second"):
            run = run_cli("run", str(path))
            assert run.exit_code == 0, f"{attempt} etl run failed:\n{run}"
            stored = self.stored_rows(folder)
            expected = pl.concat([read.rows for read in window.values()], how="diagonal_relaxed")
            checks.check_same_rows(checks.align_types(stored, expected), expected,
                                   list(dataset(self.dataset_name()).key), f"rows stored by the {attempt} etl run")

    def test_live_window_equals_the_batch_window(self, tmp_path: Path, valid_options: dict[str, Any],
                                                 ws_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
        """DESIGN 9: the closed rows the live path (``subscriptions`` + ``parse_live``, through the core's
        connections) delivers over a window equal ``fetch`` over that window, row for row, value for value."""
        from .live_window import check_live_window

        if self.dataset_name() not in self.plugin_class().live:
            pytest.skip(f"{self.plugin} does not follow {self.dataset_name()} live")
        if ws_url is None:
            pytest.skip("override the ws_url fixture with the websocket address of the venue's local fake")
        if self.live_clock != 1:
            monkeypatch.setenv("ETL_CLOCK", f"{self.live_clock}@{int(time.time() * 1000)}")
        timeframe = self.live_timeframe or self.stream_timeframes()[0]
        source = self.build_source(tmp_path, {**valid_options, "ws_url": ws_url}, timeframes=(timeframe,))
        try:
            check_live_window(source, self.live_bars, self.live_clock)
        finally:
            source.close()
