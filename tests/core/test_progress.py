"""The progress bar on a terminal: a files run whose data ends long before now still ends at 100%."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from etl.testing.pipelines import single_pipeline, write_pipeline

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ohlcv"


def run_on_a_terminal(*args: str) -> tuple[list[str], str]:
    """Run ``etl`` with stderr on a pseudo-terminal; return the progress bar's frames and stdout."""
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    completed = subprocess.run([sys.executable, "-m", "etl", *args], stderr=slave, stdout=subprocess.PIPE,
                               text=True, timeout=120)
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    text = re.sub(r"\x1b\[\?25[lh]", "", b"".join(chunks).decode())
    return [frame.strip() for frame in text.split("\r") if "%" in frame], completed.stdout


def test_a_files_run_ends_at_100_percent(tmp_path):
    source = {"plugin": "files", "path": str(FIXTURES / "{symbol}_{timeframe}.csv"), "columns": {"ts": "timestamp"},
              "symbols": ["BTCUSDT", "ETHUSDT"], "timeframes": ["1h"], "start": "2024-01-01"}
    path = write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "parquet", "path": "lake"}], name="f"))
    frames, stdout = run_on_a_terminal("run", str(path), "--log-format", "json")
    assert stdout.startswith("etl run ok: 2 streams, 1,920 rows, 0 quarantined, 0 failed")
    assert frames[0] == "run f  [------------------------------------]    0%  0 rows, 2 streams"
    assert frames[-1] == "run f  [####################################]  100%  1,920 rows, 2 streams"
