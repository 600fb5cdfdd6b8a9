"""The transform conformance suite: the schema is kept, columns are only added, warm-up makes output exact.

    from etl.testing import TransformConformance

    class TestFeatures(TransformConformance):
        plugin = "features"

        @pytest.fixture
        def plugin_options(self):
            return {"include": ["return_1", "rsi_14"]}

Input is a deterministic random walk (``etl.testing.samples``) for two symbols. Warm-up is checked end
to end: the same history loaded by one ``etl run``, by one run cut into tiny batches, and by several
incremental runs must store the same rows, because the runner prepends ``warmup(stream)`` rows of
history to every batch and keeps only the new rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from etl.base import BatchContext, PluginContext, Stream, Transform
from etl.errors import ConfigError
from etl.timeframes import iso, parse_time

from . import checks
from .pipelines import run_cli, single_pipeline, write_pipeline
from .samples import row_spacing, sample_rows, write_stream_csvs
from .suite import PluginSuite

if TYPE_CHECKING:
    import polars as pl

    from etl.datasets import Dataset
    from etl.report import Report

START = parse_time("2024-01-01")
SYMBOLS = ("BTC-USD", "ETH-USD")
SMALL_BATCH = 7
OUTPUT_DB = "out.duckdb"


class TransformConformance(PluginSuite):
    """Conformance of a transform plugin.

    Set ``plugin`` and override ``plugin_options``. ``dataset`` defaults to the first dataset the
    transform handles (OHLCV if any); ``timeframe`` and ``rows`` shape the input. A transform that
    changes the rows themselves (resampling) sets ``preserves_rows = False``. Warm-up output is compared
    within a relative ``tolerance`` (1e-9: rolling sums differ in the last bit with their starting row;
    a missing warm-up shows as nulls or visibly different values); set 0 to demand identical floats.
    """

    kind = "transform"
    base_class = Transform
    dataset: ClassVar[str | None] = None
    timeframe: ClassVar[str] = "1h"
    rows: ClassVar[int] = 240
    incremental_runs: ClassVar[int] = 4
    preserves_rows: ClassVar[bool] = True
    tolerance: ClassVar[float] = 1e-9

    def dataset_name(self) -> str:
        handled = self.plugin_class().datasets
        return self.dataset or ("ohlcv" if handled is None or "ohlcv" in handled else handled[0])

    def schema(self) -> Dataset:
        from etl.datasets import dataset

        return dataset(self.dataset_name())

    def streams(self) -> list[Stream]:
        timeframe = self.timeframe if self.schema().has_timeframe else None
        return [Stream(self.dataset_name(), symbol, timeframe) for symbol in SYMBOLS]

    def input_frames(self) -> dict[Stream, pl.DataFrame]:
        schema = self.schema()
        return {stream: sample_rows(schema, stream, START, self.rows, source="files") for stream in self.streams()}

    def write_inputs(self, folder: Path) -> None:
        write_stream_csvs(folder / "input", self.input_frames())

    def end_ms(self) -> int:
        return START + self.rows * row_spacing(self.streams()[0])

    def pipeline(self, folder: Path, options: dict[str, Any], *, dataset: str | None = None,
                 end: int | None = None, batch_rows: int | None = None) -> dict[str, Any]:
        from etl.datasets import dataset as find_dataset

        dataset = dataset or self.dataset_name()
        source: dict[str, Any] = {
            "plugin": "files",
            "path": str(folder / "input" / "{symbol}_{timeframe}.csv"),
            "dataset": dataset,
            "symbols": list(SYMBOLS),
            "start": iso(START),
            "end": iso(end or self.end_ms()),
        }
        if find_dataset(dataset).has_timeframe:
            source["timeframes"] = [self.timeframe]
        small_batches: dict[str, int] = {}
        if batch_rows:  # both the files source's pages and the runner's batches
            source["batch_rows"] = small_batches["batch_rows"] = batch_rows
        return single_pipeline(source, [{"plugin": "duckdb", "path": OUTPUT_DB}],
                               [{"plugin": self.plugin, **options}], **small_batches)

    @pytest.fixture
    def transform(self, tmp_path: Path, valid_options: dict[str, Any]) -> Transform:
        """The transform built from a validated pipeline file, its own ``check`` passed."""
        (spec,) = self.load(tmp_path, valid_options).pipelines.values()
        instance = self.plugin_class()(spec.transforms[0].settings, PluginContext("conformance", tmp_path,
                                                                                  tmp_path / ".etl"))
        instance.check()
        return instance

    def apply(self, transform: Transform, frame: pl.DataFrame, stream: Stream, new_from: int,
              folder: Path) -> tuple[pl.DataFrame, Report]:
        """One batch through ``apply`` as the runner calls it, with a real run report."""
        from etl.report import Report

        report = Report("conformance", folder / ".etl" / "quarantine")
        return transform.apply(frame, BatchContext(stream, new_from, report)), report

    def test_warmup_is_a_row_count(self, transform: Transform) -> None:
        for stream in self.streams():
            rows = transform.warmup(stream)
            assert isinstance(rows, int) and rows >= 0, f"warmup({stream.label}) returned {rows!r}; need an int >= 0"

    def test_columns_are_only_added(self, transform: Transform, tmp_path: Path) -> None:
        schema = self.schema()
        for stream, frame in self.input_frames().items():
            out, _ = self.apply(transform, frame, stream, START, tmp_path)
            label = f"{self.plugin} on {stream.label}"
            for name, dtype in frame.schema.items():
                assert name in out.columns, f"{label}: column {name!r} was removed; transforms only add columns"
                assert out.schema[name] == dtype, f"{label}: column {name!r} changed type {dtype} -> {out.schema[name]}"
            checks.check_schema(out, schema, label)
            checks.check_key_unique(out, schema, label)
            checks.check_ascending([out], label)

    def test_clean_rows_pass_through(self, transform: Transform, tmp_path: Path) -> None:
        """On clean, contiguous input no row is lost, invented, changed or quarantined."""
        if not self.preserves_rows:
            pytest.skip(f"{self.plugin} changes the rows by design (preserves_rows = False)")
        for stream, frame in self.input_frames().items():
            out, report = self.apply(transform, frame, stream, START, tmp_path)
            label = f"{self.plugin} on clean {stream.label}"
            checks.check_same_rows(out.select(frame.columns), frame, list(self.schema().key), label)
            counters = report.result(stream).counters
            assert not counters.get("quarantined"), f"{label}: quarantined {counters['quarantined']} clean rows"

    def test_dataset_restriction_is_a_config_error(self, tmp_path: Path, valid_options: dict[str, Any]) -> None:
        from etl.plugins import registry

        handled = self.plugin_class().datasets
        if handled is None:
            pytest.skip(f"{self.plugin} applies to every dataset")
        other = [name for name in registry().get("source", "files").datasets if name not in handled]
        if not other:
            pytest.skip(f"{self.plugin} handles every dataset the files source offers")
        with pytest.raises(ConfigError) as raised:
            self.load(tmp_path, valid_options, dataset=other[0])
        assert self.plugin in str(raised.value) and other[0] in str(raised.value), str(raised.value)

    def test_warmup_gives_identical_rows_however_history_is_loaded(self, tmp_path: Path,
                                                                   valid_options: dict[str, Any]) -> None:
        """One run, one run in tiny batches, and several incremental runs store the same rows."""
        frames = self.input_frames()
        whole = self.stored_after_runs(tmp_path / "whole", valid_options, frames, [self.end_ms()])
        if self.preserves_rows:
            assert whole.height == sum(frame.height for frame in frames.values()), (
                f"one etl run stored {whole.height} rows from {sum(f.height for f in frames.values())} input rows"
            )
        small = self.stored_after_runs(tmp_path / "small", valid_options, frames, [self.end_ms()], SMALL_BATCH)
        step = row_spacing(self.streams()[0])
        per_run = max(1, self.rows // self.incremental_runs)
        ends = [START + per_run * step * k for k in range(1, self.incremental_runs)] + [self.end_ms()]
        incremental = self.stored_after_runs(tmp_path / "incremental", valid_options, frames, ends)
        key = list(self.schema().key)
        checks.check_same_rows(small, whole, key,
                               f"{self.plugin}: one run in batches of {SMALL_BATCH} rows versus one run",
                               self.tolerance)
        checks.check_same_rows(incremental, whole, key, f"{self.plugin}: {len(ends)} incremental runs versus one run",
                               self.tolerance)

    def stored_after_runs(self, folder: Path, options: dict[str, Any], frames: dict[Stream, pl.DataFrame],
                          ends: list[int], batch_rows: int | None = None) -> pl.DataFrame:
        """Run the pipeline once per ``end`` (moving the file's ``end`` forward) and read what was stored."""
        import duckdb

        write_stream_csvs(folder / "input", frames)
        for end in ends:
            path = write_pipeline(folder, self.pipeline(folder, options, end=end, batch_rows=batch_rows))
            run = run_cli("run", str(path))
            assert run.exit_code == 0, f"etl run up to {iso(end)} failed:\n{run}"
        with duckdb.connect(str(folder / OUTPUT_DB), read_only=True) as connection:
            return connection.sql(f'SELECT * FROM "{self.dataset_name()}"').pl()
