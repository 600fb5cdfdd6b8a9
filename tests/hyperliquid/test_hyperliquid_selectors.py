"""Hyperliquid symbol selectors: perps from ``meta`` (``isDelisted`` is a delisting), ranked by ``dayNtlVlm`` from
``metaAndAssetCtxs``; the listing changes between two runs through the real CLI."""

from __future__ import annotations

import json
import sqlite3

from hyperliquid_helpers import pipeline_file, stored

from etl.testing.pipelines import run_cli
from etl.timeframes import DAY, floor_ts, iso, now_ms


def test_a_new_perp_joins_and_a_delisted_one_stops(fake_hl, tmp_path):
    start = floor_ts(now_ms(), "1d") - 2 * DAY
    source = {"plugin": "hyperliquid", "symbols": {"match": ["BTC", "ETH", "ZZNEW"]}, "timeframes": ["1h"],
              "start": iso(start), "end": iso(start + DAY), "base_url": fake_hl.url}
    path = pipeline_file(tmp_path, source)
    first = run_cli("run", str(path))
    assert first.exit_code == 0 and "2 streams, 48 rows" in first.summary, first

    fake_hl.list_perp("ZZNEW")
    fake_hl.delisted.add("ETH")
    listed = run_cli("symbols", str(path), "-p", "hl")
    assert listed.stdout == "symbol  status   quote volume 24h\nBTC     trading\nZZNEW   trading\n", listed
    second = run_cli("run", str(path))
    assert second.exit_code == 0 and "3 streams, 24 rows" in second.summary, second
    with sqlite3.connect(tmp_path / ".etl" / "ledger.db") as db:
        skipped = db.execute("select stream, status, error from stream_runs where status = 'skipped' and error "
                             "like 'delisted%'").fetchall()
    assert skipped == [("ohlcv/ETH/1h", "skipped", "delisted: hyperliquid lists it as delisted; its stream stops")]
    rows = stored(tmp_path, "ohlcv")
    assert rows.group_by("symbol").len().sort("symbol").rows() == [("BTC", 24), ("ETH", 24), ("ZZNEW", 24)]


def test_top_by_day_volume_and_status_all(fake_hl, tmp_path):
    fake_hl.day_volumes = {"BTC": 9e8, "ETH": 5e8, "SOL": 7e8}
    fake_hl.delisted.add("SOL")
    selector = {"match": ["BTC", "ETH", "SOL"], "top": 2, "by": "quote_volume"}
    source = {"plugin": "hyperliquid", "symbols": selector, "timeframes": ["1h"], "base_url": fake_hl.url}
    trading = run_cli("symbols", str(pipeline_file(tmp_path, source)), "-p", "hl", "--json")
    assert [(row["symbol"], row["status"], row["quote_volume"]) for row in json.loads(trading.stdout)["symbols"]] == [
        ("BTC", "trading", 9e8), ("ETH", "trading", 5e8)]
    source["symbols"] = {**selector, "status": "all"}
    every = run_cli("symbols", str(pipeline_file(tmp_path, source)), "-p", "hl", "--json")
    assert [(row["symbol"], row["status"]) for row in json.loads(every.stdout)["symbols"]] == [
        ("BTC", "trading"), ("SOL", "delisted")]
    assert len(fake_hl.bodies("metaAndAssetCtxs")) == 2 and fake_hl.bodies("meta") == []
