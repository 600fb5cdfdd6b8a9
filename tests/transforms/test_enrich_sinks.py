"""``enrich`` reads its inputs back from each sink that can be read back: Parquet, SQLite and PostgreSQL here
(DuckDB in ``test_enrich``). The inputs and the bars go to the same store; what the bars' table holds, read with
each store's own client, equals the one-shot as-of join, also after a run held bars whose inputs lagged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from enrich_helpers import MAKERS, MINUTE, START, inputs, store, until
from test_enrich import END, expected
from transform_helpers import PIPELINE, candles, write_input

from etl import config
from etl.errors import ConfigError
from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.testing.checks import align_types, check_same_rows
from tests.ops.conftest import probe_sink, probe_site
from tests.sinks.sink_stores import read_parquet, read_postgres, read_sqlite

__all__ = ["probe_sink", "probe_site"]  # fixtures; PostgreSQL is the session's (tests/conftest.py)
KEY = ["source", "symbol", "timeframe", "ts"]


def sink_and_reader(kind: str, folder: Path, request: pytest.FixtureRequest) -> tuple[dict[str, Any], Any]:
    if kind == "parquet":
        return {"plugin": "parquet", "path": "lake"}, lambda: read_parquet(folder / "lake", "ohlcv")
    if kind == "sqlite":
        return {"plugin": "sqlite", "path": "out.sqlite"}, lambda: read_sqlite(folder / "out.sqlite", "ohlcv")
    dsn = request.getfixturevalue("postgres_dsn")
    return {"plugin": "postgres", "dsn": dsn, "schema": "market"}, lambda: read_postgres(dsn, "market", "ohlcv")


@pytest.mark.parametrize("kind", ["parquet", "sqlite", "postgres"])
def test_enrich_from_each_readable_sink(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    sink, read = sink_and_reader(kind, tmp_path, request)
    bars = candles(600, taker=True, seed=3)
    frames = inputs(START, END + 30 * MINUTE)
    store(tmp_path, sink, until(frames, START + 400 * MINUTE))
    write_input(tmp_path, bars)
    enrich = {"plugin": "enrich", "from_sink": kind, "datasets": list(MAKERS), "source": "binance",
              "positioning_timeframe": "5m", "tolerance": "30m", "every": {"funding": "8h"}}
    source = {"plugin": "files", "path": "{symbol}.csv", "symbols": ["BTC"], "timeframes": ["1m"],
              "start": "2024-01-01"}
    path = write_pipeline(tmp_path, single_pipeline(source, [sink], [enrich], name=PIPELINE, batch_rows=150))

    first = run_cli("run", str(path))
    assert first.exit_code == 0 and "held rows" in first.summary, str(first)
    assert 390 <= read().height < 400

    store(tmp_path, sink, frames)
    second = run_cli("run", str(path))
    assert second.exit_code == 0 and "held" not in second.summary, str(second)
    wanted = expected(bars, frames)
    check_same_rows(align_types(read(), wanted).select(wanted.columns), wanted, KEY, f"{kind} bars")


def test_the_sink_of_enrich_must_be_readable(tmp_path: Path, probe_sink: None) -> None:
    """A sink without Sink.read (the kit's probe sink implements none of the optional methods) cannot feed enrich."""
    enrich = {"plugin": "enrich", "from_sink": "probe", "datasets": ["funding"]}
    source = {"plugin": "files", "path": "{symbol}.csv", "symbols": ["BTC"], "timeframes": ["1m"],
              "start": "2024-01-01"}
    path = write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "probe", "path": "probe"}], [enrich],
                                                    name=PIPELINE))
    with pytest.raises(ConfigError, match=r"from_sink 'probe' cannot be read back .*transforms\[0\]"):
        config.load(path)
