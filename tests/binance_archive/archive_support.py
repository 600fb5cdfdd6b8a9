"""What the binance_archive tests share: the fake market's months, file names, and a project of pipelines that
backfill from the fakes into DuckDB through the real CLI (kept out of ``conftest`` so that test modules import it
by a name no other test folder uses)."""

from __future__ import annotations

import json
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from etl.testing import PipelineRun, run_cli, run_subprocess
from etl.timeframes import from_ms, next_bar, now_ms

KLINE_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume",
                 "taker_buy_quote_volume")
PIPELINE = "history"
TRADE_EVERY_MS = 10_000  # three aggregate trades every 10 s: 25,920 a day, a day's zip small enough for tests
# The REST fake's weight limits, ten times Binance's: these tests are about files and heals, and pacing to the
# real limits (tests/exchanges tests it) costs half a second per futures aggTrades page of a healed day.
ROOMY_LIMITS = {"spot_weight_limit": 60_000, "usdm_weight_limit": 24_000, "coinm_weight_limit": 24_000}


NOW = now_ms()  # the clock of every archive test stands here (conftest): months and days never turn mid-session


def month_start(months_back: int) -> int:
    """The first instant of the calendar month ``months_back`` before the current one."""
    moment = from_ms(NOW)
    index = moment.year * 12 + moment.month - 1 - months_back
    return int(moment.replace(year=index // 12, month=index % 12 + 1, day=1, hour=0, minute=0, second=0,
                              microsecond=0).timestamp() * 1000)


FIRST = month_start(4)  # the fake archive's first month; tests read the three closed months after it
MONTHS = [next_bar(FIRST, "1M"), next_bar(next_bar(FIRST, "1M"), "1M"), month_start(1)]


def month_name(symbol: str, timeframe: str, month: int) -> str:
    return f"{symbol}-{timeframe}-{from_ms(month):%Y-%m}.zip"


def day_names(symbol: str, timeframe: str, month: int) -> list[str]:
    day, end, names = month, next_bar(month, "1M"), []
    while day < end:
        names.append(f"{symbol}-{timeframe}-{from_ms(day):%Y-%m-%d}.zip")
        day += 86_400_000
    return names


@dataclass
class Project:
    """A pipeline file reading ``binance_archive`` into ``market.duckdb``, and what a run left behind."""

    folder: Path
    path: Path

    def backfill(self, start: int, end: int, *args: str) -> PipelineRun:
        return run_cli("backfill", str(self.path), "--pipeline", PIPELINE, "--start", from_ms(start).isoformat(),
                       "--end", from_ms(end).isoformat(), *args)

    def killed_then_resumed(self, start: int, end: int, crash_at: str) -> None:
        """A backfill of ``[start, end)`` in a process killed (SIGKILL) at the fault point ``crash_at``, then
        ``etl backfill --resume`` to its end."""
        args = ("backfill", str(self.path), "--pipeline", PIPELINE, "--start", from_ms(start).isoformat(),
                "--end", from_ms(end).isoformat())
        killed = run_subprocess(*args, env={"ETL_CRASH_AT": crash_at})
        assert killed.exit_code == -signal.SIGKILL, killed
        resumed = run_subprocess("backfill", str(self.path), "--resume")
        assert resumed.exit_code == 0, resumed

    def rows(self, symbol: str, columns: tuple[str, ...] = KLINE_COLUMNS, table: str = "ohlcv",
             order: str = "ts") -> list[tuple[Any, ...]]:
        selected = ", ".join("epoch_ms(ts)" if column == "ts" else column for column in columns)
        with duckdb.connect(str(self.folder / "market.duckdb"), read_only=True) as connection:
            query = f"SELECT {selected} FROM {table} WHERE symbol = ? ORDER BY {order}"
            return connection.execute(query, [symbol]).fetchall()

    def trades(self, symbol: str) -> list[tuple[Any, ...]]:
        """(ts, trade_id, price, size, side) in id order, as ``FakeBinance.expected_trades`` gives them."""
        columns = ("ts", "trade_id", "price", "size", "side")
        return self.rows(symbol, columns, "trades", "CAST(trade_id AS BIGINT)")

    def table(self, name: str = "ohlcv") -> Any:
        order = "symbol, ts, trade_id" if name == "trades" else "symbol, ts"
        with duckdb.connect(str(self.folder / "market.duckdb"), read_only=True) as connection:
            return connection.sql(f"SELECT * FROM {name} ORDER BY {order}").pl()

    def ledger_counters(self) -> dict[str, dict[str, int]]:
        """The counters of each stream's latest run, as the ledger recorded them."""
        with sqlite3.connect(self.folder / ".etl" / "ledger.db") as connection:
            rows = connection.execute("SELECT stream, counters FROM stream_runs ORDER BY rowid").fetchall()
        return {stream: json.loads(counters) for stream, counters in rows}


def day_name(symbol: str, tag: str, day: int) -> str:
    return f"{symbol}-{tag}-{from_ms(day):%Y-%m-%d}.zip"


def log_events(run: PipelineRun, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]
