"""``rate_budget = "cluster"``: the workers of a real Dask cluster share one request budget per host, so a
venue behind one address sees their combined weight stay under its limit."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from etl.testing import run_subprocess, single_pipeline, write_pipeline
from etl.timeframes import parse_time

SYMBOLS = ("BTCUSDT", "ETHUSDT")
START, END = "2024-01-01", "2024-01-09"


def binance_pipeline(folder: Path, url: str, rate_budget: str) -> Path:
    """Eight days of 1m klines for two symbols, in day-long chunks: sixteen units, spread over both workers."""
    source = {"plugin": "binance", "symbols": list(SYMBOLS), "timeframes": ["1m"], "start": START,
              "base_url": url, "retry_base_delay": 0.01, "timeout": 5.0}
    data = single_pipeline(source, [{"plugin": "duckdb", "path": "market.duckdb"}], name="m", chunk=1_440,
                           rate_budget=rate_budget)
    return write_pipeline(folder, data)


def landed(folder: Path) -> dict[str, int]:
    with duckdb.connect(str(folder / "market.duckdb"), read_only=True) as connection:
        return dict(connection.sql("SELECT symbol, count(*) FROM ohlcv GROUP BY symbol").fetchall())


@pytest.mark.parametrize("rate_budget", ["cluster", "worker"])
def test_the_workers_share_the_venue_budget(dask_cluster, tmp_path: Path, rate_budget: str) -> None:
    """60 weight per 5 s, advertised by a venue that does not report the weight it counts: sharing one budget,
    two workers send more than a window's worth without a single 429; each with its own budget (each alone
    keeps 95% of the limit) they send up to twice the limit, and the venue answers 429."""
    from fixtures.fake_binance import FakeBinance

    with FakeBinance(spot=SYMBOLS, spot_weight_limit=60, weight_seconds=5, used_weight_headers=False) as binance:
        path = binance_pipeline(tmp_path, binance.url, rate_budget)
        result = run_subprocess("backfill", str(path), "--pipeline", "m", "--start", START, "--end", END,
                                "--cluster", dask_cluster.address, "-v", path=path, timeout=120)

    assert result.exit_code == 0, str(result)
    bars = (parse_time(END) - parse_time(START)) // 60_000
    assert landed(tmp_path) == dict.fromkeys(SYMBOLS, bars)
    workers = {line.split('"worker": "')[1].split('"')[0] for line in result.stderr.splitlines()
               if '"event": "unit ran"' in line}
    assert len(workers) == 2, "both workers ran units"
    assert binance.weight["spot"].total > 60, "more weight than one window allows"
    if rate_budget == "cluster":
        assert binance.statuses[429] == 0
        assert binance.weight["spot"].peak <= 0.98 * 60, "within the share of the limit the bucket keeps"
    else:
        assert binance.statuses[429] > 0, "two budgets of one address exceed its limit"


def test_rate_budget_is_worker_or_cluster(tmp_path: Path) -> None:
    from etl.testing import run_cli

    path = binance_pipeline(tmp_path, "http://127.0.0.1:9", "everyone")
    result = run_cli("validate", str(path))

    assert result.exit_code == 2, str(result)
    assert "Invalid value 'everyone' for 'rate_budget' in pipelines.m; valid values: worker, cluster" in result.stderr
