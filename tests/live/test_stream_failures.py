"""``etl stream`` fails loudly, naming the stream, when a source cannot follow what a pipeline asks of it:
before, the exception died with the pipeline's thread and the process exited 0 with "0 streams"."""

from __future__ import annotations

import subprocess

from harness import start_stream

from etl.testing import single_pipeline, write_pipeline
from etl.timeframes import iso, now_ms
from fixtures.fake_binance import FakeBinance


def test_a_market_the_source_cannot_follow_fails_its_streams_and_exits_1(tmp_path):
    with FakeBinance() as rest:
        source = {"plugin": "binance", "market": "coinm", "symbols": ["BTCUSD_PERP"], "timeframes": ["1m"],
                  "base_url": rest.url, "start": iso(now_ms() - 3_600_000)}
        path = write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "duckdb", "path": "m.duckdb"}],
                                                        name="coins"))
        process = start_stream(path)
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 1, err
    assert ("FAILED coins ohlcv/BTCUSD_PERP/1m: binance follows markets spot, usdm live, not 'coinm' (its feed, "
            "dstream, is not built): use etl run for it") in out.splitlines()
    assert "1 failed" in out.splitlines()[-1], out
