"""The orders in which a Binance trades follower can be handed a millisecond's three trades, each provoked on
purpose, lose none and store none twice.

``etl stream`` runs in this process against the REST fake, its connections replaced by a script that hands the
stream's follower exactly the frames, reconnections and stop a test chooses (``etl.streaming.follow``, the
wiring of threads and websockets, is the one piece swapped). Everything after it is the real code: the
follower's heals and id checks, the execution, the committer (which merges batches handed within 50 ms into one
commit), DuckDB and the checkpoint. Each test ends with a restart that heals from the checkpoint, and asserts
the stored trades are the venue's, every id once, from the pipeline's start to the last stored millisecond.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl.testing import single_pipeline, write_pipeline
from etl.timeframes import iso, now_ms
from fixtures.exchanges import synthetic
from tests.live.harness import SINKS, stored, wait_for

SYMBOL = "BTCUSDT"
Script = Callable[[Any], None]  # given the stream's follower, feeds it


@pytest.fixture
def rest() -> Iterator[Any]:
    from fixtures.fake_binance import FakeBinance

    with FakeBinance() as fake:
        yield fake


@pytest.fixture
def start() -> int:
    return now_ms() - 10_000


@pytest.fixture
def slot(start: int) -> int:
    """The id of the first trade of a millisecond five seconds after the start (three trades share it)."""
    return synthetic.trade_at(start + 5_000)


def follow(monkeypatch: pytest.MonkeyPatch, folder: Path, rest: Any, start: int, script: Script) -> None:
    """``etl stream`` of the pipeline in ``folder``, with ``script`` in place of its connections."""
    from etl import config, runner, streaming

    def scripted(source: Any, followers: dict[Any, Any], stop: Any, board: Any) -> None:
        (follower,) = followers.values()
        script(follower)

    source = {"plugin": "binance", "dataset": "trades", "symbols": [SYMBOL], "start": iso(start),
              "base_url": rest.url, "ws_url": "ws://127.0.0.1:9", "retry_base_delay": 0.01}
    path = write_pipeline(folder, single_pipeline(source, SINKS, name="live"))
    monkeypatch.setattr(streaming, "follow", scripted)
    outcome = runner.stream(config.load(path), (), threading.Event())
    assert outcome.exit_code == 0, outcome.summary()


def records(ids: list[int]) -> list[dict[str, Any]]:
    """The trades ``ids`` (in that order) as the venue's websocket spells them."""
    return [trade for one in ids for trade in synthetic.agg_trades(SYMBOL, range(one, one + 1))]


def live(follower: Any, ids: list[int]) -> None:
    """A drain of the follower's inbox that held the trades ``ids``, in that order."""
    follower.take_points(follower.frame_of([records(ids)]))


def ms(trade_id: int) -> int:
    return trade_id // synthetic.TRADES_PER_MS * synthetic.TRADE_EVERY_MS


def checkpoint(folder: Path) -> dict[str, Any]:
    return json.loads((folder / ".etl" / "checkpoints" / "live.json").read_text())["streams"][f"trades/{SYMBOL}"]


def assert_every_trade_once(folder: Path, start: int) -> pl.DataFrame:
    """The stored trades are the venue's from ``start`` to the last stored millisecond, each once, and the
    checkpoint names that millisecond and the trades stored at it."""
    trades = stored(folder, "trades").with_columns(pl.col("trade_id").cast(pl.Int64), pl.col("ts").dt.epoch("ms"))
    ids = trades["trade_id"].sort().to_list()
    assert ids == list(range(synthetic.trade_at(start), ids[-1] + 1)), "every id once, none missing"
    last = ids[-1] // synthetic.TRADES_PER_MS * synthetic.TRADES_PER_MS
    entry = checkpoint(folder)
    assert entry["next_ms"] == ms(ids[-1])
    assert sorted(int(key) for key, in entry["committed_at_next"]) == list(range(last, ids[-1] + 1))
    return trades


def restart(monkeypatch: pytest.MonkeyPatch, folder: Path, rest: Any, start: int, until: int) -> None:
    """A next start that heals from the checkpoint through ``until``, and what it leaves is complete."""
    follow(monkeypatch, folder, rest, start, lambda follower: follower.heal(until))
    assert assert_every_trade_once(folder, start)["ts"].max() >= until - synthetic.TRADE_EVERY_MS


def test_a_millisecond_split_over_live_drains_committed_in_one_group(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """Drains end between the trades of a millisecond, twice, and the committer merges the batches into one
    commit: the checkpoint holds all three trades of the last millisecond, not the last batch's alone."""

    def script(follower: Any) -> None:
        follower.heal(ms(slot))
        live(follower, [slot, slot + 1])
        live(follower, [slot + 2, slot + 3, slot + 4])
        live(follower, [slot + 5])

    follow(monkeypatch, tmp_path, rest, start, script)
    trades = assert_every_trade_once(tmp_path, start)
    assert trades["trade_id"].max() == slot + 5
    restart(monkeypatch, tmp_path, rest, start, now_ms())


def test_a_heal_rest_served_only_part_of_its_last_millisecond(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """REST had published one trade of the heal's last millisecond: the other two come live, at the very
    millisecond the stream now stands at, with no later trade to show a hole, and are stored."""

    def script(follower: Any) -> None:
        rest.trades_published = slot
        follower.heal(now_ms())
        rest.trades_published = None
        live(follower, [slot + 2, slot + 1])

    follow(monkeypatch, tmp_path, rest, start, script)
    assert assert_every_trade_once(tmp_path, start)["trade_id"].max() == slot + 2
    restart(monkeypatch, tmp_path, rest, start, now_ms())


def test_a_reconnection_whose_heal_lags_then_a_hole_inside_a_millisecond(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """A reconnection's heal finds REST one trade into a millisecond; the new connection's first trade is the
    last of the next millisecond: the hole (two trades, then two more) is healed through that millisecond."""

    def script(follower: Any) -> None:
        follower.heal(ms(slot))
        live(follower, [slot + 1, slot])  # out of order
        rest.trades_published = slot + 3
        follower.connected()
        rest.trades_published = None
        live(follower, [slot + 5, slot + 6])

    follow(monkeypatch, tmp_path, rest, start, script)
    assert assert_every_trade_once(tmp_path, start)["trade_id"].max() == slot + 6
    restart(monkeypatch, tmp_path, rest, start, now_ms())


def test_frames_of_the_old_connection_after_the_reconnections_heal(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """Trades the reconnection's heal already stored come again, out of order, beside later ones: the stored
    ones are dropped by id, the later ones stored, none twice."""

    def script(follower: Any) -> None:
        follower.heal(ms(slot))
        live(follower, [slot])
        follower.heal(ms(slot) + 1)  # a reconnection's heal, through the millisecond
        live(follower, [slot + 2, slot + 1, slot + 4, slot + 3, slot + 5])

    follow(monkeypatch, tmp_path, rest, start, script)
    assert assert_every_trade_once(tmp_path, start)["trade_id"].max() == slot + 5
    restart(monkeypatch, tmp_path, rest, start, now_ms())


def test_a_stop_between_two_drains_of_a_millisecond_then_a_restart(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """Stopped with two of a millisecond's trades stored: the restart stores the third, from the checkpoint's
    trade ids, and nothing twice."""

    def script(follower: Any) -> None:
        follower.heal(ms(slot))
        follower.stop.set()
        live(follower, [slot, slot + 1])
        live(follower, [slot + 2, slot + 3])  # after the stop: not stored

    follow(monkeypatch, tmp_path, rest, start, script)
    assert assert_every_trade_once(tmp_path, start)["trade_id"].max() == slot + 1
    restart(monkeypatch, tmp_path, rest, start, now_ms())


def test_a_stop_before_a_holes_heal_stores_nothing_after_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """The stop comes as live trades after a hole arrive: no heal starts once stopping, so neither the hole nor
    the trades after it are stored; they wait for the restart, and no hole is left behind the checkpoint."""

    def script(follower: Any) -> None:
        follower.heal(ms(slot))
        follower.stop.set()
        live(follower, [slot + 4, slot + 5, slot + 6])

    follow(monkeypatch, tmp_path, rest, start, script)
    assert assert_every_trade_once(tmp_path, start)["trade_id"].max() == slot - 1
    restart(monkeypatch, tmp_path, rest, start, now_ms())


def test_drains_cut_between_frames_and_a_reconnection_among_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """The follower's own loop, its drains two frames long: a millisecond's trades arrive in three drains, a
    reconnection (whose heal brings nothing: REST lags) sits between them, and a trade already stored comes
    again after it. One frame per trade, as Binance sends them."""
    from etl import streaming

    monkeypatch.setattr(streaming, "DRAIN_MOST", 2)
    rest.trades_published = slot + 1
    items = [records([slot + 1]), records([slot + 2]), streaming._RECONNECTED, records([slot + 3]),
             records([slot + 2]), records([slot + 3]), records([slot + 5]), records([slot + 4]), records([slot + 6])]

    def script(follower: Any) -> None:
        for item in items:
            follower.inbox.put(item)
        thread = threading.Thread(target=follower.run)
        thread.start()
        wait_for(lambda: follower.last_id == slot + 6, 20)
        follower.stop.set()
        thread.join(5)

    follow(monkeypatch, tmp_path, rest, start, script)
    assert assert_every_trade_once(tmp_path, start)["trade_id"].max() == slot + 6
    rest.trades_published = None
    restart(monkeypatch, tmp_path, rest, start, now_ms())


def test_a_restart_whose_heal_brings_nothing_checks_the_first_live_trade_against_the_checkpoint(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """Resumed at a millisecond whose three trades were stored, the restart's heal finds nothing newer (REST
    lags), and the connection's first trades come two ids later: that is a hole after the checkpoint's last id,
    healed, not a first row to take as it comes."""
    follow(monkeypatch, tmp_path, rest, start, lambda follower: follower.heal(ms(slot) + 1))
    assert checkpoint(tmp_path)["committed_at_next"] == [[str(slot)], [str(slot + 1)], [str(slot + 2)]]

    def script(follower: Any) -> None:
        rest.trades_published = slot + 2
        follower.heal(now_ms())
        rest.trades_published = None
        live(follower, [slot + 5, slot + 6])

    follow(monkeypatch, tmp_path, rest, start, script)
    assert assert_every_trade_once(tmp_path, start)["trade_id"].max() == slot + 6


def test_a_first_start_whose_heal_brought_nothing_heals_before_its_first_live_trade(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """No checkpoint, and REST had published nothing of the window when the connection's heal asked: the first
    live trades come five seconds after the start. The follower heals through their millisecond before taking
    them, so the trades in between are stored, not skipped."""

    def script(follower: Any) -> None:
        rest.trades_published = synthetic.trade_at(start) - 1
        follower.heal(now_ms())
        rest.trades_published = None
        live(follower, [slot + 2, slot + 3])

    follow(monkeypatch, tmp_path, rest, start, script)
    assert assert_every_trade_once(tmp_path, start)["trade_id"].max() == slot + 3
    restart(monkeypatch, tmp_path, rest, start, now_ms())


def test_a_stream_stopped_while_it_waits_its_turn_to_heal_a_hole_stores_nothing_after_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: Any, start: int, slot: int) -> None:
    """A hole in a sequenced stream, the stop set while the follower waits for a turn to heal it (every turn
    taken by other streams): the heal never starts, and the live trades after the hole are not stored either."""

    def script(follower: Any) -> None:
        follower.heal(ms(slot))
        follower.heals.acquire()  # another stream heals
        threading.Timer(0.3, follower.stop.set).start()
        threading.Timer(0.4, follower.heals.release).start()
        live(follower, [slot + 4, slot + 5, slot + 6])

    follow(monkeypatch, tmp_path, rest, start, script)
    assert assert_every_trade_once(tmp_path, start)["trade_id"].max() == slot - 1
    restart(monkeypatch, tmp_path, rest, start, now_ms())
