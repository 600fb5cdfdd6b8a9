"""Selectors on the ``binance_archive`` source: its symbols come from the bucket's S3 listing (symbol folders,
every page), delisted ones included, each ``trading`` or ``delisted`` by whether recent daily files exist; a run
with ``status = "all"`` reads a delisted symbol's history and asks the REST API nothing after its last file."""

from __future__ import annotations

import json
from collections.abc import Iterator

import duckdb
import pytest
from archive_support import FIRST, MONTHS

from etl.testing import run_cli
from etl.timeframes import DAY, HOUR, floor_ts, from_ms, next_bar, now_ms
from fixtures.fake_vision_metrics import FakeVisionMetrics

DELISTED = next_bar(MONTHS[1], "1M") - DAY  # LUNAUSDT's last day: the last of a month, so its monthly file is whole
SELECTOR = {"match": ["*USDT"], "exclude": ["BTC*"], "status": "all"}


@pytest.fixture
def vision() -> Iterator[FakeVisionMetrics]:
    with FakeVisionMetrics(first_month=f"{from_ms(FIRST):%Y-%m}", spot=("BTCUSDT",),
                           usdm=("BTCUSDT", "ETHUSDT", "LUNAUSDT", "SOLUSDT", "ETHBTC")) as fake:
        fake.delisted = {"LUNAUSDT": DELISTED}
        fake.page_size = 2  # the symbol folders come in three pages
        yield fake


def listed(archive) -> list[tuple[str, str]]:
    result = run_cli("symbols", str(archive.path), "--pipeline", "history", "--json")
    assert result.exit_code == 0, result
    return [(row["symbol"], row["status"]) for row in json.loads(result.stdout)["symbols"]]


@pytest.mark.parametrize("dataset", ["ohlcv", "positioning"])
def test_the_listing_holds_delisted_symbols_with_their_status(project, vision, rest, dataset):
    keys = {"dataset": dataset, "timeframes": ["5m"] if dataset == "positioning" else ["1h"]}
    archive = project(market="usdm", symbols=SELECTOR, **keys)

    assert listed(archive) == [("ETHUSDT", "trading"), ("LUNAUSDT", "delisted"), ("SOLUSDT", "trading")]
    trading = project("trading", market="usdm", symbols={**SELECTOR, "status": "trading"}, **keys)
    assert listed(trading) == [("ETHUSDT", "trading"), ("SOLUSDT", "trading")]
    folders = [r for r in vision.requests if r.query.get("prefix", "").endswith("/daily/klines/")
               or r.query.get("prefix", "").endswith("/daily/metrics/")]
    assert len(folders) == 2 * 3, "three pages of two symbol folders, per listing"


def test_a_run_reads_a_delisted_symbols_history_and_nothing_after_it(project, vision, rest):
    rest.symbols["usdm"] = {"ETHUSDT", "SOLUSDT"}  # Binance's REST API no longer lists LUNAUSDT
    archive = project(market="usdm", symbols={**SELECTOR, "match": ["LUNA*", "ETH*USDT"]})
    end = floor_ts(now_ms(), "1h")

    result = archive.backfill(MONTHS[0], end)

    assert result.exit_code == 0, result
    assert archive.rows("LUNAUSDT") == rest.expected_klines("LUNAUSDT", "1h", MONTHS[0], DELISTED + DAY)
    assert archive.rows("ETHUSDT") == rest.expected_klines("ETHUSDT", "1h", MONTHS[0], end)
    assert not [r for r in rest.requests_to("/fapi/v1/klines") if r.query["symbol"] == "LUNAUSDT"]
    assert archive.ledger_counters()["ohlcv/LUNAUSDT/1h"].get("healed_bars", 0) == 0


def test_positioning_of_a_delisted_symbol_stops_at_its_last_metrics_file(project, vision, rest):
    rest.symbols["usdm"] = {"ETHUSDT", "SOLUSDT"}
    archive = project(market="usdm", dataset="positioning", timeframes=["5m"], symbols={**SELECTOR, "match": ["LUNA*"]})

    result = archive.backfill(DELISTED - DAY, floor_ts(now_ms(), "1h") - HOUR)

    assert result.exit_code == 0, result
    with duckdb.connect(str(archive.folder / "market.duckdb"), read_only=True) as connection:
        first, last, count = connection.execute("SELECT epoch_ms(min(ts)), epoch_ms(max(ts)), count(*) "
                                                "FROM positioning").fetchone()
    assert (first, last, count) == (DELISTED - DAY, DELISTED + DAY, 2 * 288 + 1)
    assert not rest.requests_to("/futures/data/globalLongShortAccountRatio")


def test_an_archive_that_stalls_on_a_symbol_rest_still_trades_is_filled_from_rest(project, vision, rest):
    vision.delisted = {"ETHUSDT": DELISTED}  # no file after it, but Binance still trades ETHUSDT
    archive = project(market="usdm", symbols=["ETHUSDT"])
    end = floor_ts(now_ms(), "1h")

    result = archive.backfill(MONTHS[0], end)

    assert result.exit_code == 0, result
    assert archive.rows("ETHUSDT") == rest.expected_klines("ETHUSDT", "1h", MONTHS[0], end)
    assert archive.ledger_counters()["ohlcv/ETHUSDT/1h"]["healed_bars"] > 0


def test_top_by_quote_volume_ranks_by_the_rest_apis_tickers(project, vision, rest):
    rest.symbols["usdm"] = {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    rest.quote_volumes = {"ETHUSDT": 5e8, "SOLUSDT": 9e8}
    archive = project(market="usdm", symbols={**SELECTOR, "top": 1, "by": "quote_volume"})

    result = run_cli("symbols", str(archive.path), "--pipeline", "history", "--json")

    assert result.exit_code == 0, result
    assert [(row["symbol"], row["status"], row["quote_volume"]) for row in json.loads(result.stdout)["symbols"]] == [
        ("SOLUSDT", "trading", 9e8)]
    assert len(rest.requests_to("/fapi/v1/ticker/24hr")) == 1
