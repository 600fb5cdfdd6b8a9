"""``etl status`` of a pipeline that ``etl stream`` follows: read from another process while the stream runs,
after SIGTERM and after SIGKILL; and the structured log lines of a live run (connect, disconnect, heal, gap).

A real ``etl stream`` runs against the Binance fakes (1-second klines); ``etl status`` reads the state dir only.
Table cells are compared exactly, with times and ages (which move with the clock) written ``<time>`` and
``<age>``; the ages themselves are checked against bounds through ``--json``.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl.config import load
from etl.liveboard import board_path
from etl.testing import run_cli, single_pipeline, write_pipeline
from etl.timeframes import iso, now_ms, parse_time
from tests.live.harness import SINKS, start_stream, stop

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
STREAMS = ["ohlcv/BTCUSDT/1s", "ohlcv/ETHUSDT/1s"]
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
AGE = re.compile(r"(?<![/\w.])\d+(\.\d)?[smhd]\b")


@pytest.fixture
def fakes() -> Iterator[tuple[Any, Any]]:
    from fixtures.fake_binance import FakeBinance
    from fixtures.fake_binance_ws import FakeBinanceWebsocket

    with FakeBinance() as rest, FakeBinanceWebsocket(rest) as ws:
        yield rest, ws


def pipeline(folder: Path, rest: Any, ws: Any, start: int) -> Path:
    config = {"plugin": "binance", "symbols": SYMBOLS, "timeframes": ["1s"], "start": iso(start),
              "base_url": rest.url, "ws_url": ws.url, "retry_base_delay": 0.01}
    return write_pipeline(folder, single_pipeline(config, SINKS, name="live"))


def cells(text: str) -> list[list[str]]:
    """The table's lines as cells (columns are two or more spaces apart), times and ages replaced."""
    text = AGE.sub("<age>", TIME.sub("<time>", text))
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def status_json(path: Path) -> list[dict[str, Any]]:
    run = run_cli("status", str(path), "--json")
    assert run.exit_code == 0, str(run)
    return json.loads(run.stdout)


def wait_for(path: Path, condition: Any, seconds: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = status_json(path)
        if condition(found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"etl status never showed it: {found}")


def connection(found: list[dict[str, Any]]) -> dict[str, Any]:
    """The first stream's connection as ``etl status --json`` shows it; empty before it is known."""
    return (found[0].get("live") or {}).get("connection") or {}


def table(path: Path) -> list[list[str]]:
    run = run_cli("status", str(path))
    assert run.exit_code == 0, str(run)
    return cells(run.stdout)


def url(ws: Any) -> str:
    return f"{ws.url}/stream?streams=btcusdt@kline_1s/ethusdt@kline_1s"


def test_status_shows_connections_while_streaming_and_stopped_after_sigterm(fakes: tuple[Any, Any],
                                                                             tmp_path: Path) -> None:
    rest, ws = fakes
    ws.drop(1)  # the first connection is cut: the second is a reconnect
    path = pipeline(tmp_path / "live", rest, ws, now_ms() // 1000 * 1000 - 20_000)
    process = start_stream(path)
    try:
        found = wait_for(path, lambda found: connection(found).get("reconnects") == 1 and connection(found)["up"]
                         and all(health["lag_s"] is not None for health in found))
        running = table(path)
    finally:
        code, _, _, err = stop(process)

    assert code == 0, err
    for health, stream in zip(found, STREAMS, strict=True):
        live = health["live"]
        assert health["stream"] == stream and health["lag_s"] <= 5
        assert live["connection"]["last_message_age_s"] <= 1
        assert TIME.fullmatch(live["connection"].pop("connected"))
        live["connection"].pop("last_message_age_s")
        assert live == {"running": True, "pid": process.pid, "process": f"running (pid {process.pid})",
                        "connection": {"url": url(ws), "up": True, "reconnects": 1,
                                       "last_error": "connection dropped without a close frame"}}
    assert running == [
        ["pipeline", "stream", "checkpoint", "lag", "gaps", "missing bars", "last run", "rows", "result"],
        ["live", STREAMS[0], "<time>", "<age>", "0", "0", "never run"],
        ["live", STREAMS[1], "<time>", "<age>", "0", "0", "never run"],
        [""],
        ["live connections (etl stream):"],
        ["pipeline", "process", "connection", "streams", "up since", "reconnects", "last message"],
        ["live", f"running (pid {process.pid})", url(ws), "2", "<time>", "1", "<age> ago"],
    ]
    assert table(path)[-1] == ["live", "stopped <time>", url(ws), "2", "down", "1", "<age> ago"]
    after = status_json(path)[0]["live"]
    assert (after["running"], after["process"].startswith("stopped "), after["connection"]["up"]) == (
        False, True, False)


def test_a_killed_stream_is_shown_as_not_running(fakes: tuple[Any, Any], tmp_path: Path) -> None:
    """SIGKILL leaves the state file behind, naming a pid that is gone: status must not call it running."""
    rest, ws = fakes
    path = pipeline(tmp_path / "live", rest, ws, now_ms() // 1000 * 1000 - 5_000)
    process = start_stream(path)
    wait_for(path, lambda found: connection(found).get("up"))
    assert stop(process, signal.SIGKILL)[0] == -signal.SIGKILL

    assert table(path)[-1] == ["live", f"not running (pid {process.pid} gone)", url(ws), "2",
                               "down", "0", "<age> ago"]
    live = status_json(path)[0]["live"]
    assert (live["running"], live["connection"]["up"], live["connection"]["connected"]) == (False, False, None)


def test_a_connection_that_is_down_shows_why_while_the_stream_runs(tmp_path: Path) -> None:
    from fixtures.fake_binance import FakeBinance
    from fixtures.fake_binance_ws import FakeBinanceWebsocket

    with FakeBinance() as rest:
        with FakeBinanceWebsocket(rest) as ws:
            path = pipeline(tmp_path / "live", rest, ws, now_ms() // 1000 * 1000 - 5_000)
            process = start_stream(path)
            wait_for(path, lambda found: connection(found).get("up"))
        try:
            found = wait_for(path, lambda found: connection(found).get("last_error") == "connection refused")
            row = table(path)[-1]
        finally:
            stop(process)

    assert connection(found)["up"] is False and found[0]["live"]["running"] is True
    assert row[1] == f"running (pid {process.pid})"
    assert row[4] == "down: connection refused"


def test_a_state_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = pipeline(tmp_path / "live", type("Rest", (), {"url": "http://127.0.0.1:9"})(),
                    type("Ws", (), {"url": "ws://127.0.0.1:9"})(), now_ms())
    board = board_path(load(path).state_dir, "live")
    board.parent.mkdir(parents=True)
    board.write_text("{half a")

    assert table(path)[-1] == ["live", f"cannot read {board}: Expecting property name enclosed in double quotes: "
                               "line 1 column 2 (char 1)", "-", "0", "-", "0", "-"]


def test_a_state_dir_that_refuses_the_state_file_costs_the_stream_nothing(fakes: tuple[Any, Any],
                                                                          tmp_path: Path) -> None:
    """``<state_dir>/live`` is a file: the board cannot be written; one warning, and the bars still land."""
    rest, ws = fakes
    path = pipeline(tmp_path / "live", rest, ws, now_ms() // 1000 * 1000 - 10_000)
    blocker = board_path(load(path).state_dir, "live").parent
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    process = start_stream(path)
    time.sleep(4)
    code, _, out, err = stop(process)

    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("etl stream ok: 2 streams")
    warnings = [json.loads(line) for line in err.splitlines() if '"live state not written"' in line]
    assert len(warnings) == 1, err
    assert warnings[0]["path"] == str(blocker / "live.json") and warnings[0]["error"].startswith("FileExistsError")
    assert table(path)[-1] == ["live", f"cannot read {blocker / 'live.json'}: [Errno 20] Not a directory: "
                               f"'{blocker / 'live.json'}'", "-", "0", "-", "0", "-"]


def test_connect_disconnect_heal_and_gap_are_one_json_log_line_each(fakes: tuple[Any, Any], tmp_path: Path) -> None:
    rest, ws = fakes
    start = now_ms() // 1000 * 1000 - 20_000
    rest.missing_bars = {start + 5_000}
    ws.drop(1)
    path = pipeline(tmp_path / "live", rest, ws, start)
    process = start_stream(path)
    wait_for(path, lambda found: connection(found).get("reconnects") == 1)
    code, _, _, err = stop(process)

    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines()]
    for line in lines:
        assert TIME.fullmatch(line.pop("timestamp"))
    events = {event: [line for line in lines if line["event"] == event]
              for event in ("live connected", "live disconnected", "live heal", "live gap")}
    connected = {"event": "live connected", "level": "info", "url": url(ws), "streams": 2}
    assert events["live connected"] == [connected, connected]
    assert events["live disconnected"] == [{"event": "live disconnected", "level": "warning", "url": url(ws),
                                            "streams": 2, "error": "connection dropped without a close frame"}]
    assert sorted(events["live gap"], key=lambda line: line["stream"]) == [
        {"event": "live gap", "level": "warning", "stream": stream, "start": iso(start + 5_000),
         "end": iso(start + 6_000), "bars": 1} for stream in STREAMS]
    first_heals = {line["stream"]: line for line in events["live heal"][::-1]}
    for stream in STREAMS:
        heal = first_heals[stream]
        begin, _, end = heal.pop("window").partition("..")
        assert begin == iso(start) and TIME.fullmatch(end)
        bars = (parse_time(end) - start) // 1000
        assert heal == {"event": "live heal", "level": "info", "stream": stream, "rows": bars - 1}

