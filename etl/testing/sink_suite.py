"""The sink conformance suite: idempotent upserts on the dataset key, committed batches, every dataset.

    from etl.testing import SinkConformance

    class TestSqliteSink(SinkConformance):
        plugin = "sqlite"

        @pytest.fixture
        def plugin_options(self, tmp_path):
            return {"path": str(tmp_path / "market.sqlite")}

        def read_rows(self, settings, table):
            ...  # every row of `table`, as a polars DataFrame

Batches are written through the sink's own ``open``/``write``/``close`` with the frames the runner
hands sinks (dataset schema, UTC millisecond ``ts``, extra columns), then read back with
``read_rows``; values are compared after casting to the batch's types, so a store that keeps
timestamps as text or epoch numbers still passes when it holds the same instants.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from etl.base import PluginContext, Sink, Stream
from etl.config import TABLE_OPTION
from etl.errors import SinkError
from etl.options import Option
from etl.timeframes import iso, parse_time

from . import checks
from .pipelines import run_cli, single_pipeline, write_pipeline
from .samples import sample_rows, write_stream_csvs
from .suite import PluginSuite

if TYPE_CHECKING:
    import polars as pl

    from etl.datasets import Dataset

START = parse_time("2024-01-01")
ROWS = 48
STREAMS = (Stream("ohlcv", "BTC-USD", "1h"), Stream("ohlcv", "ETH-USD", "1h"))
INPUT_FOLDER = "input"


class SinkConformance(PluginSuite):
    """Conformance of a sink plugin. Set ``plugin``, override ``plugin_options`` and ``read_rows``."""

    kind = "sink"
    base_class = Sink
    table: ClassVar[str] = "conformance"

    def read_rows(self, settings: dict[str, Any], table: str) -> pl.DataFrame:
        """Every row stored in ``table`` by a sink configured with ``settings`` (validated, paths resolved)."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_rows(settings, table)")

    def declared_options(self) -> dict[str, Option]:
        return {**super().declared_options(), "table": TABLE_OPTION}

    def pipeline(self, folder: Path, options: dict[str, Any]) -> dict[str, Any]:
        source = {
            "plugin": "files",
            "path": str(folder / INPUT_FOLDER / "{symbol}_{timeframe}.csv"),
            "symbols": [stream.symbol for stream in STREAMS],
            "timeframes": ["1h"],
            "start": iso(START),
        }
        return single_pipeline(source, [{"plugin": self.plugin, **options}])

    @pytest.fixture
    def sink_settings(self, tmp_path: Path, valid_options: dict[str, Any]) -> dict[str, Any]:
        """The sink's settings as the core validated them from a pipeline file."""
        (spec,) = self.load(tmp_path, valid_options).pipelines.values()
        return spec.sinks[0].settings

    @pytest.fixture
    def context(self, tmp_path: Path) -> PluginContext:
        return PluginContext("conformance", tmp_path, tmp_path / ".etl")

    @contextmanager
    def session(self, settings: dict[str, Any], context: PluginContext) -> Iterator[Sink]:
        """One run's life of the sink: construct, open, the writes of the ``with`` block, close."""
        sink = self.plugin_class()(dict(settings), context)
        sink.open()
        try:
            yield sink
        finally:
            sink.close()

    def write(self, settings: dict[str, Any], context: PluginContext, *batches: pl.DataFrame,
              table: str | None = None) -> None:
        with self.session(settings, context) as sink:
            for batch in batches:
                sink.store(batch, ohlcv(), table or self.table)

    def assert_stored(self, settings: dict[str, Any], expected: pl.DataFrame, what: str,
                      table: str | None = None, dataset: Dataset | None = None) -> None:
        table = table or self.table
        schema = dataset or ohlcv()
        stored = checks.align_types(self.read_rows(settings, table), expected)
        checks.check_same_rows(stored, expected, list(schema.key), f"{self.plugin} table {table!r} after {what}")

    def write_inputs(self, folder: Path) -> None:
        frames = {stream: sample_rows(ohlcv(), stream, START, ROWS, source="files") for stream in STREAMS}
        write_stream_csvs(folder / INPUT_FOLDER, frames)

    def test_validate_writes_nothing(self, tmp_path: Path, valid_options: dict[str, Any]) -> None:
        self.write_inputs(tmp_path)
        before = set(tmp_path.rglob("*"))
        path = write_pipeline(tmp_path, self.pipeline(tmp_path, valid_options))
        run = run_cli("validate", str(path))
        assert run.exit_code == 0, f"etl validate failed:\n{run}"
        created = sorted(str(item) for item in set(tmp_path.rglob("*")) - before - {path})
        assert not created, f"etl validate (the sink's __init__ and check) created {created}"

    def test_first_write_lands_every_row(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        import polars as pl

        batches = [sample_rows(ohlcv(), stream, START, ROWS) for stream in STREAMS]
        self.write(sink_settings, context, *batches)
        self.assert_stored(sink_settings, pl.concat(batches), "one batch per stream")

    def test_identical_rewrite_changes_nothing(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        batch = sample_rows(ohlcv(), STREAMS[0], START, ROWS)
        self.write(sink_settings, context, batch, batch)
        self.write(sink_settings, context, batch)
        self.assert_stored(sink_settings, batch, "the same batch written three times, over two sessions")

    def test_overlapping_upsert_replaces_rows_by_key(self, sink_settings: dict[str, Any],
                                                     context: PluginContext) -> None:
        import polars as pl

        stream = STREAMS[0]
        first = sample_rows(ohlcv(), stream, START, 30)
        second = sample_rows(ohlcv(), stream, START, 28, first_index=20).with_columns(
            pl.col("close") + 1.0, pl.col("high") + 1.0
        )
        self.write(sink_settings, context, first, second)
        expected = pl.concat([first.head(20), second])
        self.assert_stored(sink_settings, expected, "a batch overlapping the previous one with new values")

    def test_new_column_is_added(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        import polars as pl

        stream = STREAMS[0]
        first = sample_rows(ohlcv(), stream, START, 24)
        second = sample_rows(ohlcv(), stream, START, 24, first_index=24).with_columns(
            (pl.col("close") * pl.col("volume")).alias("quote_volume")
        )
        self.write(sink_settings, context, first, second)
        expected = pl.concat([first, second], how="diagonal")
        self.assert_stored(sink_settings, expected, "a batch bringing a new column 'quote_volume'")

    def test_empty_batch_changes_nothing(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        batch = sample_rows(ohlcv(), STREAMS[0], START, ROWS)
        self.write(sink_settings, context, batch.clear(), table=f"{self.table}_empty")
        self.write(sink_settings, context, batch, batch.clear())
        self.assert_stored(sink_settings, batch, "an empty batch")

    def test_every_dataset_round_trips(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        from etl.datasets import dataset
        from etl.plugins import registry

        for name in registry().names("dataset"):
            schema = dataset(name)
            stream = Stream(name, "BTC-USD", "1h" if schema.has_timeframe else None)
            batch = sample_rows(schema, stream, START, ROWS)
            with self.session(sink_settings, context) as sink:
                sink.store(batch, schema, name)
            self.assert_stored(sink_settings, batch, f"a {name} batch", table=name, dataset=schema)

    def test_tables_are_kept_apart(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        one, two = (sample_rows(ohlcv(), stream, START, ROWS) for stream in STREAMS)
        self.write(sink_settings, context, one, table=f"{self.table}_one")
        self.write(sink_settings, context, two, table=f"{self.table}_two")
        self.assert_stored(sink_settings, one, "a write to another table", table=f"{self.table}_one")
        self.assert_stored(sink_settings, two, "a write to another table", table=f"{self.table}_two")

    def test_column_type_change_is_refused(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        """A batch whose column changed type is an etl.SinkError, and what was stored stays as it was."""
        import polars as pl

        stream = STREAMS[0]
        first = sample_rows(ohlcv(), stream, START, 24).with_columns(pl.lit(1.5).alias("quote_volume"))
        changed = sample_rows(ohlcv(), stream, START, 24, first_index=12).with_columns(
            pl.lit("not a number").alias("quote_volume")
        )
        self.write(sink_settings, context, first)
        with pytest.raises(SinkError) as raised, self.session(sink_settings, context) as sink:
            sink.store(changed, ohlcv(), self.table)
        assert "quote_volume" in str(raised.value), f"the SinkError does not name the column: {raised.value}"
        self.assert_stored(sink_settings, first, "a refused batch")

    def test_pipeline_lands_the_rows_once(self, tmp_path: Path, valid_options: dict[str, Any]) -> None:
        """``etl run`` from the ``files`` source into this sink, twice: the rows land once."""
        import polars as pl

        frames = {stream: sample_rows(ohlcv(), stream, START, ROWS, source="files") for stream in STREAMS}
        write_stream_csvs(tmp_path / INPUT_FOLDER, frames)
        path = write_pipeline(tmp_path, self.pipeline(tmp_path, valid_options))
        (spec,) = self.load(tmp_path, valid_options).pipelines.values()
        settings, table = spec.sinks[0].settings, spec.sinks[0].table or "ohlcv"
        for attempt in ("first", "second"):
            run = run_cli("run", str(path))
            assert run.exit_code == 0, f"{attempt} etl run failed:\n{run}"
            self.assert_stored(settings, pl.concat(frames.values()), f"the {attempt} etl run", table=table)

    # The optional methods: each test runs only when the sink implements the method.

    def test_stored_reports_each_stream(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        """``Sink.stored``: rows and first and last ``ts`` per stream, an empty list for a missing table."""
        sink = self.plugin_class()(dict(sink_settings), context)
        if sink.stored(ohlcv(), self.table) is None:
            pytest.skip(f"{self.plugin} does not implement Sink.stored")
        assert sink.stored(ohlcv(), self.table) == [], "a table not yet written holds nothing"
        batches = [sample_rows(ohlcv(), stream, START, ROWS) for stream in STREAMS]
        self.write(sink_settings, context, *batches)
        found = {item.key: (item.rows, item.first_ms, item.last_ms) for item in sink.stored(ohlcv(), self.table)}
        assert found == {(batch["source"][0], batch["symbol"][0], batch["timeframe"][0]): (
            batch.height, _ms(batch["ts"].min()), _ms(batch["ts"].max())) for batch in batches}

    def test_prune_removes_one_symbol_only(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        """``Sink.prune``: the symbol's rows (those before a time, when given) go, the others stay, and pruning
        again deletes nothing."""
        sink = self.plugin_class()(dict(sink_settings), context)
        if type(sink).prune is Sink.prune:
            pytest.skip(f"{self.plugin} does not implement Sink.prune")
        first, second = (sample_rows(ohlcv(), stream, START, ROWS) for stream in STREAMS)
        self.write(sink_settings, context, first, second)
        match = {"source": first["source"][0], "symbol": first["symbol"][0]}
        cut = START + (ROWS // 2) * 3_600_000
        assert sink.prune(ohlcv(), self.table, match, cut) == ROWS // 2
        self.assert_stored(sink_settings, _concat(first.tail(ROWS - ROWS // 2), second), "a prune before a time")
        assert sink.prune(ohlcv(), self.table, match, None) == ROWS - ROWS // 2
        assert sink.prune(ohlcv(), self.table, match, None) == 0
        self.assert_stored(sink_settings, second, "a prune of one symbol, twice")

    def test_read_returns_the_selected_rows(self, sink_settings: dict[str, Any], context: PluginContext) -> None:
        """``Sink.read``: the rows of the selection's source, symbols and ``[start, end)``."""
        from etl.stored import Selection

        sink = self.plugin_class()(dict(sink_settings), context)
        batches = [sample_rows(ohlcv(), stream, START, ROWS) for stream in STREAMS]
        every = Selection(batches[0]["source"][0])
        if sink.read(ohlcv(), self.table, every) is None:
            pytest.skip(f"{self.plugin} does not implement Sink.read")
        self.write(sink_settings, context, *batches)
        some = Selection(every.source, (STREAMS[1].symbol,), START + 3_600_000, START + 5 * 3_600_000)
        frame = sink.read(ohlcv(), self.table, some).collect()
        assert frame.height == 4 and set(frame["symbol"]) == {STREAMS[1].symbol}
        assert sink.read(ohlcv(), self.table, every).collect().height == len(STREAMS) * ROWS
        assert sink.read(ohlcv(), self.table, Selection("elsewhere")).collect().height == 0


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000)


def _concat(*frames: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return pl.concat(frames)


def ohlcv() -> Dataset:
    from etl.datasets import dataset

    return dataset("ohlcv")
