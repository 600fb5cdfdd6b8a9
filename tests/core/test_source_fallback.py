"""Source fallback: a window the primary (the fake Polygon) fails for good is fetched by the fallback (the fake
Binance) under its own symbol; rows say who delivered them, the ledger and the summary say why."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.checkpoint import Checkpoints
from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.timeframes import DAY, HOUR, iso, parse_time
from fixtures.fake_binance import FakeBinance
from fixtures.fake_polygon import API_KEY, NOT_ENTITLED, FakePolygon

START, END = parse_time("2024-01-01"), parse_time("2024-01-02")
MAP = {"BTC": {"polygon": "X:BTCUSD", "binance": "BTCUSDT"}}


@pytest.fixture
def venues(monkeypatch) -> Iterator[tuple[FakePolygon, FakeBinance]]:
    monkeypatch.setenv("POLYGON_API_KEY", API_KEY)
    with FakePolygon() as polygon, FakeBinance() as binance:
        yield polygon, binance


def pipeline_file(folder: Path, polygon_url: str, binance: FakeBinance, chunk: int = 50_000, concurrency: int = 4,
                  **keys: Any) -> Path:
    """Polygon for the canonical BTC, Binance its fallback; ``chunk`` bars per unit of a backfill."""
    source = {"plugin": "polygon", "symbols": ["BTC"], "timeframes": ["1h"], "start": "2024-01-01",
              "end": "2024-01-02", "api_key": "${POLYGON_API_KEY}", "base_url": polygon_url,
              "requests_per_minute": 60_000, "symbol_map": MAP,
              "fallback": [{"plugin": "binance", "base_url": binance.url, "retry_base_delay": 0.01}], **keys}
    source = {key: value for key, value in source.items() if value is not None}  # None: leave the key out
    sinks = [{"plugin": "duckdb", "path": "market.duckdb"}]
    return write_pipeline(folder, single_pipeline(source, sinks, name="btc", chunk=chunk, concurrency=concurrency))


def stored(path: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path.parent / "market.duckdb"), read_only=True) as connection:
        return connection.execute("SELECT source, symbol, epoch_ms(ts), close FROM ohlcv ORDER BY ts").fetchall()


def fallbacks(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path.parent / ".etl" / "ledger.db") as connection:
        return connection.execute("SELECT stream, window_start, window_end, source, fallback, reason "
                                  "FROM fallbacks ORDER BY rowid").fetchall()


def polygon_rows(polygon: FakePolygon, start: int, end: int) -> list[tuple[Any, ...]]:
    return [("polygon", "BTC", ts, close) for ts, _, close in polygon.expected(start, end, HOUR)]


def binance_rows(binance: FakeBinance, start: int, end: int) -> list[tuple[Any, ...]]:
    return [("binance", "BTC", bar[0], bar[4]) for bar in binance.expected_klines("BTCUSDT", "1h", start, end)]


def test_a_window_the_primary_is_refused_comes_from_the_fallback_from_where_the_primary_stopped(venues, tmp_path):
    polygon, binance = venues
    polygon.page_size = 5
    polygon.refuse(START + 5 * HOUR, END)  # the second page starts there
    path = pipeline_file(tmp_path, polygon.url, binance)

    result = run_cli("run", str(path))

    assert result.exit_code == 0, result
    switch = START + 5 * HOUR
    assert stored(path) == polygon_rows(polygon, START, switch) + binance_rows(binance, switch, END)
    assert {request.path.split("/")[4] for request in polygon.aggs_requests} == {"X:BTCUSD"}
    assert {request.query["symbol"] for request in binance.requests_to("/api/v3/klines")} == {"BTCUSDT"}
    [(stream, start, end, source, fallback, reason)] = fallbacks(path)
    assert (stream, start, end, source, fallback) == ("ohlcv/BTC/1h", iso(switch), iso(END), "polygon", "binance")
    assert reason.startswith(f"polygon: HTTP 403: {NOT_ENTITLED}")
    assert f"FELL BACK btc ohlcv/BTC/1h {iso(switch)}..{iso(END)}: polygon -> binance (polygon: HTTP 403" \
        in result.stdout
    assert "fell back: 1" in result.summary
    assert Checkpoints(tmp_path / ".etl" / "checkpoints" / "btc.json").next("ohlcv/BTC/1h") == END


def test_the_next_window_asks_the_primary_again(venues, tmp_path):
    polygon, binance = venues
    polygon.refuse(START, START + DAY)
    path = pipeline_file(tmp_path, polygon.url, binance, chunk=24, end=None)

    result = run_cli("backfill", str(path), "--pipeline", "btc", "--start", "2024-01-01", "--end", "2024-01-03")

    assert result.exit_code == 0, result
    assert stored(path) == binance_rows(binance, START, END) + polygon_rows(polygon, END, END + DAY)
    assert [row[1:3] for row in fallbacks(path)] == [(iso(START), iso(END))]
    assert "fell back: 1" in result.summary


def test_a_primary_host_that_is_down_falls_back_at_once_for_every_later_window(venues, tmp_path):
    _, binance = venues
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}"
    path = pipeline_file(tmp_path, down, binance, chunk=24, concurrency=1, end=None)  # one window after the other

    result = run_cli("backfill", str(path), "--pipeline", "btc", "--start", "2024-01-01", "--end", "2024-01-03")

    assert result.exit_code == 0, result
    assert stored(path) == binance_rows(binance, START, END + DAY)
    reasons = [row[5] for row in fallbacks(path)]
    assert len(reasons) == 2 and "connection refused" in reasons[0]
    assert "not sent" in reasons[1], "the circuit is open: the second window does not wait out retries again"
    assert "fell back: 2" in result.summary


def test_a_symbol_map_file_and_a_window_no_source_can_fetch(venues, tmp_path):
    polygon, binance = venues
    polygon.refuse(START, END)
    (tmp_path / "symbols.toml").write_text('BTC = { polygon = "X:BTCUSD", binance = "NOPEUSDT" }\n')
    path = pipeline_file(tmp_path, polygon.url, binance, symbol_map="symbols.toml")

    result = run_cli("run", str(path))

    assert result.exit_code == 1
    [failed] = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed.startswith(f"FAILED btc ohlcv/BTC/1h: polygon: HTTP 403: {NOT_ENTITLED}")
    assert "; then fallback binance: " in failed and "NOPEUSDT" in failed


def test_transforms_see_one_series_across_the_switch(venues, tmp_path):
    """The fallback's first bar has a return computed from the primary's bar before it, not a null."""
    polygon, binance = venues
    polygon.refuse(START + 5 * HOUR, END)
    polygon.page_size = 5
    path = pipeline_file(tmp_path, polygon.url, binance)
    path.write_text(path.read_text() + '\n[[pipelines.btc.transforms]]\nplugin = "features"\ninclude = ["return_1"]\n')

    assert run_cli("run", str(path)).exit_code == 0

    with duckdb.connect(str(tmp_path / "market.duckdb"), read_only=True) as connection:
        rows = connection.execute("SELECT source, close, return_1 FROM ohlcv ORDER BY ts").fetchall()
    (_, before, _), (source, after, change) = rows[4], rows[5]
    assert source == "binance" and change == pytest.approx(after / before - 1)


def test_on_a_cluster_the_fallback_reaches_the_ledger_and_the_summary(venues, tmp_path):
    """What a unit counted on a Dask worker travels back with its batches, the fallbacks included."""
    polygon, binance = venues
    polygon.refuse(START, START + DAY)
    path = pipeline_file(tmp_path, polygon.url, binance, chunk=24, end=None)

    result = run_cli("backfill", str(path), "--pipeline", "btc", "--start", "2024-01-01", "--end", "2024-01-03",
                     "--cluster", "local:1")

    assert result.exit_code == 0, result
    assert stored(path) == binance_rows(binance, START, END) + polygon_rows(polygon, END, END + DAY)
    assert [row[1:5] for row in fallbacks(path)] == [(iso(START), iso(END), "polygon", "binance")]
    assert "fell back: 1" in result.summary


def test_read_status_and_prune_cover_the_rows_the_fallback_delivered(venues, tmp_path):
    """The fallback's rows carry its name in ``source``: ``etl.read`` gives them with the primary's, ``etl status
    --stored`` counts them in the stream's rows, and ``etl prune`` removes them too."""
    import etl

    polygon, binance = venues
    polygon.page_size = 5
    polygon.refuse(START + 5 * HOUR, END)
    path = pipeline_file(tmp_path, polygon.url, binance)
    assert run_cli("run", str(path)).exit_code == 0

    read = etl.read(path, "btc").collect()
    assert sorted(zip(read["ts"].dt.epoch("ms"), read["source"], strict=True)) == \
        [(ts, source) for source, _, ts, _ in stored(path)]
    assert set(read["source"]) == {"polygon", "binance"} and read.height == 24
    listing = run_cli("status", str(path), "--stored").stdout.splitlines()
    assert listing[1].split()[:7] == ["btc", "ohlcv/BTC/1h", "duckdb", "ohlcv", "24", iso(START),
                                      iso(END - HOUR)]
    pruned = run_cli("prune", str(path), "-p", "btc", "-s", "BTC", "--yes")
    assert pruned.stdout.splitlines()[0] == "duckdb ohlcv: 24 rows removed", pruned.output
    assert stored(path) == []
