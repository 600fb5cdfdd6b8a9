"""``layout = "freqtrade"``: a freqtrade data folder, written here as freqtrade writes it, lands row for row."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.feather as feather

from etl.testing.pipelines import run_cli, single_pipeline, write_pipeline

HOUR = 3_600_000
START = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def candles(rows: int, base: float, step: int = HOUR) -> list[list]:
    """``[ms, open, high, low, close, volume]`` rows, the values distinct per file."""
    return [[START + i * step, base + i, base + i + 2.5, base + i - 1.25, base + i + 0.5, 10.0 + i]
            for i in range(rows)]


def write_feather(path: Path, rows: list[list]) -> None:
    """As freqtrade's feather handler writes (``DataFrame.to_feather(compression="lz4")``): ``date`` a UTC
    datetime in nanoseconds, then open, high, low, close, volume."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows, strict=True))
    table = pa.table({
        "date": pa.array([ms * 1_000_000 for ms in columns[0]], pa.timestamp("ns", tz="UTC")),
        **{name: pa.array(values, pa.float64()) for name, values in
           zip(("open", "high", "low", "close", "volume"), columns[1:], strict=True)},
    })
    feather.write_feather(table, path, compression="lz4")


def write_json(path: Path, rows: list[list], zipped: bool = False) -> None:
    """As freqtrade's JSON handler writes (``DataFrame.to_json(orient="values")``): a list of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(rows, separators=(",", ":"))
    path.write_bytes(gzip.compress(text.encode()) if zipped else text.encode())


def write_parquet(path: Path, rows: list[list]) -> None:
    frame = pl.DataFrame(rows, schema=["date", "open", "high", "low", "close", "volume"], orient="row")
    frame.with_columns(pl.from_epoch("date", "ms").dt.replace_time_zone("UTC")).write_parquet(path)


def pipeline(folder: Path, data: Path, symbols: list[str], dataset: str = "ohlcv", **options) -> Path:
    source = {"plugin": "files", "layout": "freqtrade", "path": str(data), "dataset": dataset, "symbols": symbols,
              "start": "2024-01-01", "end": "2024-01-03", **options}
    if dataset == "ohlcv":
        source["timeframes"] = ["1h"]
    return write_pipeline(folder, single_pipeline(source, [{"plugin": "duckdb", "path": "market.duckdb"}], name="ft"))


def stored(folder: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(folder / "market.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def as_rows(symbol: str, rows: list[list]) -> list[tuple]:
    return [(symbol, datetime.fromtimestamp(ms / 1000, UTC), *values) for ms, *values in rows]


def ohlcv_rows(folder: Path) -> list[tuple]:
    return stored(folder, "select symbol, ts, open, high, low, close, volume from ohlcv order by symbol, ts")


def test_spot_candles_in_every_format_land_under_the_pair_name(tmp_path):
    data = tmp_path / "user_data" / "data" / "binance"
    files = {"BTC/USDT": (write_feather, "BTC_USDT-1h.feather", 30.0),
             "ETH/USDT": (write_json, "ETH_USDT-1h.json", 20.0),
             "XRP/USDT": (write_parquet, "XRP_USDT-1h.parquet", 5.0)}
    expected = []
    for symbol, (write, name, base) in files.items():
        rows = candles(24, base)
        write(data / name, rows)
        expected += as_rows(symbol, rows)
    rows = candles(24, 1.0)
    write_json(data / "SOL_USDT-1h.json.gz", rows, zipped=True)
    expected += as_rows("SOL/USDT", rows)
    path = pipeline(tmp_path, data, ["BTC/USDT", "ETH/USDT", "XRP/USDT", "SOL/USDT"])
    checked = run_cli("validate", str(path))
    assert (checked.exit_code, checked.stdout) == (0, "pipelines.toml: 1 pipelines, 4 streams: OK\n"), checked
    result = run_cli("run", str(path))
    assert result.exit_code == 0, result
    assert ohlcv_rows(tmp_path) == sorted(expected)
    assert stored(tmp_path, "select distinct source, timeframe from ohlcv") == [("files", "1h")]


def test_futures_candles_mark_prices_and_funding_rates(tmp_path):
    data = tmp_path / "binance"
    futures, mark = candles(48, 100.0), candles(48, 200.0)
    write_feather(data / "futures" / "BTC_USDT_USDT-1h-futures.feather", futures)
    write_feather(data / "futures" / "BTC_USDT_USDT-1h-mark.feather", mark)
    write_feather(data / "BTC_USDT-1h.feather", candles(48, 1.0))  # the spot pair's: not read for BTC/USDT:USDT
    assert run_cli("run", str(pipeline(tmp_path, data, ["BTC/USDT:USDT"]))).exit_code == 0
    assert ohlcv_rows(tmp_path) == as_rows("BTC/USDT:USDT", futures)

    marked = tmp_path / "mark"
    marked.mkdir()
    assert run_cli("run", str(pipeline(marked, data, ["BTC/USDT:USDT"], candle_type="mark"))).exit_code == 0
    assert ohlcv_rows(marked) == as_rows("BTC/USDT:USDT", mark)

    rates = [[START + i * 8 * HOUR, 0.0001 * (i + 1), 0.0, 0.0, 0.0, 0.0] for i in range(6)]
    write_feather(data / "futures" / "BTC_USDT_USDT-8h-funding_rate.feather", rates)
    funding = tmp_path / "funding"
    funding.mkdir()
    assert run_cli("run", str(pipeline(funding, data, ["BTC/USDT:USDT"], dataset="funding"))).exit_code == 0
    assert stored(funding, "select symbol, ts, funding_rate from funding order by ts") == [
        ("BTC/USDT:USDT", datetime.fromtimestamp(ms / 1000, UTC), rate) for ms, rate, *_ in rates
    ]


def test_trades_files_in_feather_and_json(tmp_path):
    data = tmp_path / "binance"
    data.mkdir()
    trades = [[START + i * 1000, str(9000 + i), None, "buy" if i % 2 else "sell", 42000.0 + i, 0.5 + i, 0.0]
              for i in range(5)]
    trades = [[*trade[:6], trade[4] * trade[5]] for trade in trades]
    columns = ("timestamp", "id", "type", "side", "price", "amount", "cost")
    pl.DataFrame(trades, schema=columns, orient="row").write_ipc(data / "BTC_USDT-trades.feather", compression="lz4")
    write_json(data / "ETH_USDT-trades.json", trades)
    assert run_cli("run", str(pipeline(tmp_path, data, ["BTC/USDT", "ETH/USDT"], dataset="trades"))).exit_code == 0
    expected = [(symbol, datetime.fromtimestamp(t[0] / 1000, UTC), t[1], t[4], t[5], t[3], t[6])
                for symbol in ("BTC/USDT", "ETH/USDT") for t in trades]
    assert stored(tmp_path, "select symbol, ts, trade_id, price, size, side, cost from trades "
                            "order by symbol, ts") == expected


def validate_error(path: Path) -> str:
    result = run_cli("validate", str(path))
    assert (result.exit_code, result.stdout) == (2, ""), result
    return result.stderr


def test_a_file_whose_bytes_are_not_its_suffix_is_refused_naming_both(tmp_path):
    data = tmp_path / "binance"
    data.mkdir()
    (data / "BTC_USDT-1h.feather").write_text("date,open\n2024-01-01,1\n")
    write_json(data / "ETH_USDT-1h.json.gz", candles(3, 1.0))  # not gzipped
    path = pipeline(tmp_path, data, ["BTC/USDT"])
    message = (f"files: cannot read {data / 'BTC_USDT-1h.feather'} as feather (Arrow IPC): detected format csv; "
               "the files source reads feather, parquet, json and json.gz")
    assert validate_error(path) == f"Error: {path}: {message} (pipelines.ft.source)\n"
    run = run_cli("run", str(path))
    assert (run.exit_code, run.stdout.splitlines()[0]) == (1, f"FAILED ft ohlcv/BTC/USDT/1h: {message}")
    assert validate_error(pipeline(tmp_path, data, ["ETH/USDT"])).endswith(
        f"cannot read {data / 'ETH_USDT-1h.json.gz'} as json.gz: detected format json; "
        "the files source reads feather, parquet, json and json.gz (pipelines.ft.source)\n")


def test_missing_ambiguous_and_malformed_files(tmp_path):
    data = tmp_path / "binance"
    write_json(data / "BTC_USDT-1h.json", candles(3, 1.0))
    write_feather(data / "BTC_USDT-1h.feather", candles(3, 1.0))
    write_json(data / "ETH_USDT-1h.json", [[START, 1.0, 2.0]])
    missing = validate_error(pipeline(tmp_path, data, ["SOL/USDT"]))
    assert missing.endswith(f"files: no freqtrade file for ohlcv/SOL/USDT/1h: looked for {data / 'SOL_USDT-1h'}"
                            ".{feather,parquet,json,json.gz} (pipelines.ft.source)\n")
    both = validate_error(pipeline(tmp_path, data, ["BTC/USDT"]))
    assert f"files: ohlcv/BTC/USDT/1h has 2 freqtrade files ({data / 'BTC_USDT-1h.feather'}, " in both
    assert "keep one format" in both
    run = run_cli("run", str(pipeline(tmp_path, data, ["ETH/USDT"])))
    assert (run.exit_code, run.stdout.splitlines()[0]) == (
        1, f"FAILED ft ohlcv/ETH/USDT/1h: files: {data / 'ETH_USDT-1h.json'} is not freqtrade JSON: expected rows "
           "of [date, open, high, low, close, volume]")


def test_freqtrade_layout_refuses_what_it_cannot_mean(tmp_path):
    data = tmp_path / "binance"
    data.mkdir()
    refused = {
        "open_interest": ({"dataset": "open_interest"}, "freqtrade keeps no open interest"),
        "columns": ({"columns": {"ts": "date"}}, "layout = 'freqtrade' fixes the columns; remove 'columns'"),
        "format": ({"format": "csv"}, "layout = 'freqtrade' tells formats by suffix; remove 'format'"),
        "candle_type": ({"dataset": "funding", "candle_type": "mark"},
                        "candle_type chooses ohlcv candles; dataset 'funding' has its own files (remove candle_type)"),
    }
    for name, (options, message) in refused.items():
        folder = tmp_path / name
        folder.mkdir()
        dataset = options.pop("dataset", "ohlcv")
        assert message in validate_error(pipeline(folder, data, ["BTC/USDT:USDT"], dataset=dataset, **options))
    other = write_pipeline(tmp_path, single_pipeline(
        {"plugin": "files", "path": "x.csv", "symbols": ["BTC"], "timeframes": ["1h"], "candle_type": "mark"},
        [{"plugin": "duckdb", "path": "market.duckdb"}], name="ft"))
    assert "candle_type applies to layout = 'freqtrade' only (pipelines.ft.source)" in validate_error(other)
