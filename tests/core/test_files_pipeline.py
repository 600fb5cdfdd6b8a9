"""The whole path on local data: files -> duckdb + parquet, exactly the fixture rows, reruns change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl.testing.pipelines import single_pipeline
from etl.testing.pipelines import write_pipeline as write_pipeline_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ohlcv"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
TIMEFRAMES = ["1h", "1d"]

PIPELINE = f"""
    [pipelines.demo.source]
    plugin = "files"
    path = "{FIXTURES}/{{symbol}}_{{timeframe}}.csv"
    columns = {{ ts = "timestamp" }}
    symbols = {json.dumps(SYMBOLS)}
    timeframes = {json.dumps(TIMEFRAMES)}
    start = "2024-01-01"

    [[pipelines.demo.sinks]]
    plugin = "duckdb"
    path = "data/market.duckdb"

    [[pipelines.demo.sinks]]
    plugin = "parquet"
    path = "data/lake"
"""


def expected_rows() -> pl.DataFrame:
    frames = []
    for symbol in SYMBOLS:
        for timeframe in TIMEFRAMES:
            frame = pl.read_csv(FIXTURES / f"{symbol}_{timeframe}.csv")
            frames.append(frame.select(
                pl.lit("files").alias("source"), pl.lit(symbol).alias("symbol"), pl.lit(timeframe).alias("timeframe"),
                pl.col("timestamp").str.to_datetime(time_unit="ms", time_zone="UTC").alias("ts"),
                pl.col("open", "high", "low", "close", "volume").cast(pl.Float64), pl.col("trades"),
            ))
    return pl.concat(frames).sort("symbol", "timeframe", "ts")


def stored(base: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    columns = "source, symbol, timeframe, ts, open, high, low, close, volume, trades"
    with duckdb.connect(str(base / "data" / "market.duckdb"), read_only=True) as con:
        db = con.sql(f"select {columns} from ohlcv order by symbol, timeframe, ts").pl()
    lake = duckdb.sql(
        f"select {columns} from read_parquet('{base}/data/lake/ohlcv/**/*.parquet', hive_partitioning=true) "
        "order by symbol, timeframe, ts"
    ).pl()
    return normalise(db), normalise(lake)


def normalise(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("ms"))


def test_files_to_duckdb_and_parquet_exactly_once(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(PIPELINE)
    first = etl_cli("run", str(path))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[-1].startswith("etl run ok: 6 streams, 3,060 rows, 0 quarantined, 0 failed")

    expected = expected_rows()
    db, lake = stored(tmp_path)
    assert db.height == lake.height == expected.height == 3 * (960 + 60)
    assert db.equals(expected)
    assert lake.equals(expected)

    second = etl_cli("run", str(path))
    assert second.exit_code == 0
    assert "6 streams, 0 rows" in second.stdout
    db_again, lake_again = stored(tmp_path)
    assert db_again.equals(expected) and lake_again.equals(expected)


def test_lake_layout_is_hive_partitioned_by_stream_and_month(write_pipeline, etl_cli, tmp_path):
    etl_cli("run", str(write_pipeline(PIPELINE)))
    files = sorted(p.relative_to(tmp_path / "data" / "lake").as_posix() for p in (tmp_path / "data").rglob("*.parquet"))
    assert "ohlcv/source=files/symbol=BTCUSDT/timeframe=1h/month=2024-01/data.parquet" in files
    assert "ohlcv/source=files/symbol=SOLUSDT/timeframe=1d/month=2024-02/data.parquet" in files
    assert len(files) == 3 * (2 + 2)


def test_relative_paths_resolve_against_the_pipeline_file_not_cwd(write_pipeline, etl_cli, tmp_path, monkeypatch):
    (tmp_path / "vendor").mkdir()
    for symbol in SYMBOLS:
        (tmp_path / "vendor" / f"{symbol}_1d.csv").write_text((FIXTURES / f"{symbol}_1d.csv").read_text())
    path = write_pipeline(PIPELINE.replace(str(FIXTURES), "vendor").replace('["1h", "1d"]', '["1d"]'))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = etl_cli("run", str(path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "market.duckdb").exists()
    assert (tmp_path / ".etl" / "checkpoints" / "demo.json").exists()
    assert not any(elsewhere.iterdir())


def test_checkpoint_file_is_readable_json(write_pipeline, etl_cli, tmp_path):
    etl_cli("run", str(write_pipeline(PIPELINE)))
    data = json.loads((tmp_path / ".etl" / "checkpoints" / "demo.json").read_text())
    assert data["pipeline"] == "demo"
    assert data["streams"]["ohlcv/BTCUSDT/1h"]["next"] == "2024-02-10T00:00:00Z"
    assert data["streams"]["ohlcv/BTCUSDT/1d"]["next"] == "2024-03-01T00:00:00Z"
    assert data["streams"]["ohlcv/ETHUSDT/1h"]["rows"] == 960


def btc_daily(folder: Path, files: str, batch_rows: int | None = None) -> Path:
    """Pipeline 'd': BTCUSDT daily bars from ``files`` into d.duckdb; ``batch_rows`` sizes both the source's
    batches and the pipeline's."""
    source = {"plugin": "files", "path": files, "columns": {"ts": "timestamp"}, "symbols": ["BTCUSDT"],
              "timeframes": ["1d"]}
    tuning = {} if batch_rows is None else {"batch_rows": batch_rows}
    pipeline = single_pipeline({**source, **tuning}, [{"plugin": "duckdb", "path": "d.duckdb"}], name="d", **tuning)
    return write_pipeline_file(folder, pipeline)


def test_new_rows_in_the_file_are_picked_up_incrementally(etl_cli, tmp_path):
    source = tmp_path / "BTCUSDT_1d.csv"
    lines = (FIXTURES / "BTCUSDT_1d.csv").read_text().splitlines()
    source.write_text("\n".join(lines[:31]) + "\n")
    path = btc_daily(tmp_path, "{symbol}_{timeframe}.csv")
    assert "30 rows" in etl_cli("run", str(path)).stdout
    source.write_text("\n".join(lines) + "\n")
    assert "30 rows" in etl_cli("run", str(path)).stdout
    with duckdb.connect(str(tmp_path / "d.duckdb"), read_only=True) as con:
        assert con.execute("select count(*), count(distinct ts) from ohlcv").fetchall() == [(60, 60)]


def test_files_and_rows_out_of_time_order_land_in_order(etl_cli, tmp_path):
    """Files named against their time order, rows shuffled inside: the stream still loads every row once, in
    time order, and its checkpoint follows the last bar (not the last row read)."""
    lines = (FIXTURES / "BTCUSDT_1d.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    (tmp_path / "part-a.csv").write_text("\n".join([header, *reversed(rows[30:])]) + "\n")
    (tmp_path / "part-b.csv").write_text("\n".join([header, *rows[15:30], *rows[:15]]) + "\n")
    path = btc_daily(tmp_path, "part-*.csv", batch_rows=7)
    assert etl_cli("run", str(path)).exit_code == 0
    with duckdb.connect(str(tmp_path / "d.duckdb"), read_only=True) as con:
        stored = con.execute("select count(*), count(distinct ts), min(ts)::date::varchar from ohlcv").fetchall()
    assert stored == [(60, 60, "2024-01-01")]
    data = json.loads((tmp_path / ".etl" / "checkpoints" / "d.json").read_text())
    assert data["streams"]["ohlcv/BTCUSDT/1d"]["next"] == "2024-03-01T00:00:00Z"


@pytest.mark.parametrize("unit,scale", [("s", 1), ("ms", 1000), ("us", 1_000_000)])
def test_binance_layout_reads_headerless_kline_csv_in_any_epoch_unit(write_pipeline, etl_cli, tmp_path, unit, scale):
    rows = [
        f"{1704067200 * scale + i * 60 * scale},42000.1,42010.5,41990.0,42005.2,12.5,{1704067259999 + i * 60000},"
        f"525000.5,321,6.25,262500.2,0"
        for i in range(3)
    ]
    (tmp_path / "BTCUSDT-1m-2024-01.csv").write_text("\n".join(rows) + "\n")
    path = write_pipeline("""
        [pipelines.k.source]
        plugin = "files"
        layout = "binance"
        path = "{symbol}-{timeframe}-*.csv"
        symbols = ["BTCUSDT"]
        timeframes = ["1m"]

        [[pipelines.k.sinks]]
        plugin = "duckdb"
        path = "k.duckdb"
    """)
    result = etl_cli("run", str(path))
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(tmp_path / "k.duckdb"), read_only=True) as con:
        got = con.sql("select epoch_ms(ts), close, quote_volume, trades, taker_buy_volume from ohlcv order by ts")
        assert got.fetchall() == [
            (1704067200000 + i * 60000, 42005.2, 525000.5, 321, 6.25) for i in range(3)
        ]
        columns = [row[0] for row in con.sql("describe ohlcv").fetchall()]
    assert "close_time" not in columns and "ignore" not in columns
