"""One conformance suite, run against each of the four sinks: duckdb, parquet, sqlite, postgres.

``etl.testing.SinkConformance`` (first write, identical rewrite, overlapping upsert, new column, empty
batch, every dataset, refused type change, a real ``etl run`` twice) plus what this project promises on
top: whole-row replacement, batches holding several streams, null-only columns, many random
overlapping rewrites that never duplicate a key, a null key refused with nothing of its batch stored,
and a 1M-row batch. Every check reads the rows back with the store's own client.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from sink_stores import read_store

from etl.base import Stream
from etl.datasets import dataset
from etl.errors import SinkError
from etl.testing import SinkConformance
from etl.testing.checks import align_types, check_same_rows
from etl.testing.samples import sample_rows
from etl.testing.sink_suite import ohlcv

START = 1_704_067_200_000  # 2024-01-01
BTC = Stream("ohlcv", "BTC-USD", "1h")
ETH = Stream("ohlcv", "ETH-USD", "1h")


def million_candles(rows: int = 1_000_000) -> pl.DataFrame:
    """One-minute candles of one stream, with two extras (a float with nulls and an integer)."""
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, rows)))
    rsi = rng.uniform(0, 100, rows)
    return pl.DataFrame({
        "source": pl.repeat("sample", rows, eager=True),
        "symbol": pl.repeat("BTC-USD", rows, eager=True),
        "timeframe": pl.repeat("1m", rows, eager=True),
        "ts": (pl.int_range(0, rows, eager=True) * 60_000 + START).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
        "open": close * 0.999,
        "high": close * 1.002,
        "low": close * 0.997,
        "close": close,
        "volume": rng.gamma(2.0, 10.0, rows),
        "rsi_14": pl.Series(rsi).scatter(list(range(14)), None),
        "trades": rng.integers(0, 1000, rows),
    })


class FourSinkConformance(SinkConformance):
    """The shared suite plus this project's own promises, for a sink whose store ``read_store`` reads."""

    def read_rows(self, settings: dict[str, Any], table: str) -> pl.DataFrame:
        return read_store(self.plugin, settings, table)

    def test_batch_of_several_streams(self, sink_settings, context) -> None:
        one = sample_rows(ohlcv(), BTC, START, 30)
        two = sample_rows(ohlcv(), ETH, START, 30)
        both = pl.concat([one, two])
        changed = pl.concat([one.tail(10), two.tail(10)]).with_columns(pl.col("close") * 2)
        self.write(sink_settings, context, both, changed)
        expected = pl.concat([one.head(20), two.head(20), changed])
        self.assert_stored(sink_settings, expected, "a batch holding two streams, then a rewrite of both")

    def test_streams_over_the_months_other_symbols_stored(self, sink_settings, context) -> None:
        """A backfill's batches cover the months other symbols already hold: new symbols append beside them,
        a stream that overlaps its own rows replaces only those."""
        btc, eth = sample_rows(ohlcv(), BTC, START, 30), sample_rows(ohlcv(), ETH, START, 30)
        ada, sol = (sample_rows(ohlcv(), Stream("ohlcv", name, "1h"), START, 30) for name in ("ADA-USD", "SOL-USD"))
        btc_next = sample_rows(ohlcv(), BTC, START, 10, first_index=30)
        eth_again = sample_rows(ohlcv(), ETH, START, 10, first_index=25).with_columns(pl.col("close") * 2)
        self.write(sink_settings, context, pl.concat([btc, eth]), pl.concat([ada, sol]),
                   pl.concat([btc_next, eth_again]))
        expected = pl.concat([btc, btc_next, eth.head(25), eth_again, ada, sol])
        self.assert_stored(sink_settings, expected, "new symbols beside stored ones, then a batch of two streams")

    def test_batch_of_a_hundred_streams_rewrites_each(self, sink_settings, context) -> None:
        streams = [Stream("ohlcv", f"S{index:03d}-USD", "1h") for index in range(100)]
        first = pl.concat([sample_rows(ohlcv(), stream, START, 4) for stream in streams])
        second = pl.concat([sample_rows(ohlcv(), stream, START, 4, first_index=2) for stream in streams]).with_columns(
            pl.col("volume") + 1)
        self.write(sink_settings, context, first, second)
        expected = pl.concat([first.filter(pl.col("ts") < pl.col("ts").min() + pl.duration(hours=2)), second])
        self.assert_stored(sink_settings, expected, "a rewrite of 100 streams in one batch")

    def test_rewrite_replaces_whole_rows(self, sink_settings, context) -> None:
        """A stored column the rewriting batch lacks becomes null for the rewritten rows, in every sink."""
        with_extra = sample_rows(ohlcv(), BTC, START, 24).with_columns(pl.lit(7.5).alias("rsi_14"))
        without = sample_rows(ohlcv(), BTC, START, 6, first_index=18)
        self.write(sink_settings, context, with_extra, without)
        expected = pl.concat([with_extra.head(18), without.with_columns(pl.lit(None, pl.Float64).alias("rsi_14"))])
        self.assert_stored(sink_settings, expected, "a rewrite without the 'rsi_14' column")

    def test_all_null_column_is_not_a_type(self, sink_settings, context) -> None:
        """A column with no value yet (polars Null) stores nothing and does not fix the column's type."""
        empty_feature = sample_rows(ohlcv(), BTC, START, 12).with_columns(pl.lit(None).alias("ema_20"))
        later = sample_rows(ohlcv(), BTC, START, 12, first_index=12).with_columns(pl.lit(3.25).alias("ema_20"))
        self.write(sink_settings, context, empty_feature, later)
        expected = pl.concat([empty_feature.with_columns(pl.col("ema_20").cast(pl.Float64)), later])
        self.assert_stored(sink_settings, expected, "a null-only column, then values")

    def test_random_overlapping_rewrites_keep_keys_unique(self, sink_settings, context) -> None:
        rng = np.random.default_rng(3)
        expected: dict[int, pl.DataFrame] = {}
        with self.session(sink_settings, context) as sink:
            for round_number in range(12):
                first, rows = int(rng.integers(0, 80)), int(rng.integers(1, 40))
                batch = sample_rows(ohlcv(), BTC, START, rows, first_index=first).with_columns(
                    pl.col("volume") + round_number)
                sink.store(batch, ohlcv(), self.table)
                for index, row in zip(range(first, first + rows), batch.iter_slices(1), strict=True):
                    expected[index] = row
        self.assert_stored(sink_settings, pl.concat(expected.values()), "12 random overlapping rewrites")

    def test_null_key_is_refused_and_the_batch_lands_nowhere(self, sink_settings, context) -> None:
        """A batch with a null key column is a SinkError; none of its rows land, earlier rows stay."""
        trades = dataset("trades")
        good = sample_rows(trades, Stream("trades", "BTC-USD"), START, 10)
        bad = sample_rows(trades, Stream("trades", "BTC-USD"), START, 10, first_index=10).with_columns(
            pl.when(pl.int_range(pl.len()) == 6).then(None).otherwise(pl.col("trade_id")).alias("trade_id"))
        with self.session(sink_settings, context) as sink:
            sink.store(good, trades, "trades")
            with pytest.raises(SinkError) as raised:
                sink.store(bad, trades, "trades")
        assert "trade_id" in str(raised.value), raised.value
        self.assert_stored(sink_settings, good, "a batch with a null trade_id", table="trades", dataset=trades)

    def test_batch_without_a_key_column_is_refused(self, sink_settings, context) -> None:
        """``Sink.store`` checks the key once for every sink: a batch that lost a key column names it."""
        trades = dataset("trades")
        batch = sample_rows(trades, Stream("trades", "BTC-USD"), START, 10).drop("trade_id")
        with self.session(sink_settings, context) as sink, pytest.raises(SinkError) as raised:
            sink.store(batch, trades, "trades")
        assert f"{self.plugin} table 'trades': the batch lacks key column(s) trade_id" in str(raised.value)
        assert self.read_rows(sink_settings, "trades").is_empty()

    def test_million_row_batch(self, sink_settings, context) -> None:
        batch = million_candles()
        self.write(sink_settings, context, batch)
        stored = align_types(self.read_rows(sink_settings, self.table), batch)
        check_same_rows(stored, batch, list(ohlcv().key), f"{self.plugin} after a 1M-row batch")



class TestDuckDBConformance(FourSinkConformance):
    plugin = "duckdb"

    @pytest.fixture
    def plugin_options(self, tmp_path):
        return {"path": str(tmp_path / "store" / "market.duckdb")}


class TestParquetConformance(FourSinkConformance):
    plugin = "parquet"

    @pytest.fixture
    def plugin_options(self, tmp_path):
        return {"path": str(tmp_path / "lake")}


class TestSQLiteConformance(FourSinkConformance):
    plugin = "sqlite"

    @pytest.fixture
    def plugin_options(self, tmp_path):
        return {"path": str(tmp_path / "store" / "market.sqlite")}


class TestPostgresConformance(FourSinkConformance):
    plugin = "postgres"

    @pytest.fixture
    def plugin_options(self, postgres_dsn):
        return {"dsn": postgres_dsn, "schema": "market"}
