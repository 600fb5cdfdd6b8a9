"""What a running ``etl stream`` tells ``etl status``, another process: its connections, as a state file.

The hooks of ``etl.live.Connections`` (a connection came up, a frame arrived, it went down) only set values in
memory, on the event loop's thread, so reading frames never waits on a disk. Once a second a thread writes
the pipeline's board to ``STATE_DIR/live/PIPELINE.json``: written to a temporary file and renamed over the old
one, so a reader sees the last whole board or the one before, never half of one. The board names the pid of
its process; ``read_board`` says the stream is not running when that process is gone, or no longer holds the
pipeline's lock (a SIGKILL leaves the file behind, with its pid).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .log import get_logger
from .timeframes import iso, now_ms

if TYPE_CHECKING:
    from .live import Listener, Subscription

WRITE_SECONDS = 1.0
log = get_logger("etl.liveboard")


@dataclass
class ConnectionState:
    """One connection of a live pipeline: when it last came up, how often it came up again, its last frame."""

    url: str
    streams: list[str]
    up: bool = False
    connected_ms: int | None = None
    reconnects: int = 0
    last_message_ms: int | None = None
    last_error: str | None = None  # why it last went down, kept after it came up again


@dataclass
class LiveBoard:
    """A live pipeline's connections, recorded by the hooks and written once a second for ``etl status``."""

    state_dir: Path
    pipeline: str
    pid: int = field(default_factory=os.getpid)
    connections: dict[str, ConnectionState] = field(default_factory=dict)
    failed: bool = False  # a write failed (and was logged)

    @property
    def path(self) -> Path:
        return board_path(self.state_dir, self.pipeline)

    def listener(self, inner: Listener) -> Listener:
        """``inner`` (the followers' listener) with the board's hooks in front."""
        from dataclasses import replace

        def connected(subscription: Subscription) -> None:
            state = self._state(subscription)
            state.reconnects += state.connected_ms is not None
            state.up, state.connected_ms = True, now_ms()
            inner.connected(subscription)

        def heard(subscription: Subscription) -> None:
            self._state(subscription).last_message_ms = now_ms()

        def disconnected(subscription: Subscription, reason: str) -> None:
            state = self._state(subscription)
            state.up, state.last_error = False, reason

        return replace(inner, connected=connected, heard=heard, disconnected=disconnected)

    def _state(self, subscription: Subscription) -> ConnectionState:
        state = self.connections.get(subscription.url)
        if state is None:
            state = ConnectionState(subscription.url, [stream.label for stream in subscription.streams])
            self.connections[subscription.url] = state
        return state

    def watch(self, stop: threading.Event) -> None:
        """Write the board now and once a second until ``stop`` is set."""
        self.write()
        while not stop.wait(WRITE_SECONDS):
            self.write()

    def write(self, stopped_ms: int | None = None) -> None:
        """Replace the board's file; a state dir that refuses it is logged once and costs the stream nothing."""
        board = {"pipeline": self.pipeline, "pid": self.pid, "updated_ms": now_ms(), "stopped_ms": stopped_ms,
                 "connections": [asdict(state) for state in list(self.connections.values())]}
        temporary = self.path.with_suffix(f".{self.pid}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(board, indent=1))
            os.replace(temporary, self.path)
        except OSError as exc:
            if not self.failed:
                log.warning("live state not written", pipeline=self.pipeline, path=str(self.path),
                            error=f"{type(exc).__name__}: {exc}")
            self.failed = True

    def stopped(self) -> None:
        """The last write, on a clean exit: every connection down, the time the stream stopped."""
        for state in self.connections.values():
            state.up = False
        self.write(stopped_ms=now_ms())


def board_path(state_dir: Path, pipeline: str) -> Path:
    return state_dir / "live" / f"{pipeline}.json"


def read_board(state_dir: Path, pipeline: str) -> dict[str, Any] | None:
    """The pipeline's last board, with ``running`` set from its process, or None if it never streamed."""
    try:
        board = json.loads(board_path(state_dir, pipeline).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # not JSON, or a state dir that is not what etl stream made
        board = {"pipeline": pipeline, "pid": None, "stopped_ms": None, "connections": [],
                 "error": f"cannot read {board_path(state_dir, pipeline)}: {exc}"}
    board["running"] = board["stopped_ms"] is None and holds_lock(state_dir, pipeline, board["pid"])
    return board


def holds_lock(state_dir: Path, pipeline: str, pid: int | None) -> bool:
    """Whether process ``pid`` is alive and is the one named in the pipeline's lock file (``etl.lock``)."""
    from .lock import PipelineLock

    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    try:
        holder = PipelineLock(state_dir, pipeline).path.read_text().strip()
    except FileNotFoundError:
        return False
    return holder == str(pid)


def connection_rows(board: dict[str, Any], now: int) -> list[tuple[Any, ...]]:
    """A live pipeline's connections for the ``etl status`` table: the process, each connection's address
    and streams, when it came up (or why it is down), its reconnects and the age of its last frame."""
    from .health import human

    process = process_state(board)
    rows = []
    for state in board["connections"]:
        if not board["running"]:
            up = "down"
        else:
            up = iso(state["connected_ms"]) if state["up"] else f"down: {state['last_error'] or 'connecting'}"
        heard = f"{human(now - state['last_message_ms'])} ago" if state["last_message_ms"] else "-"
        rows.append((board["pipeline"], process, state["url"], len(state["streams"]), up, state["reconnects"],
                     heard))
    return rows or [(board["pipeline"], process, "-", 0, "-", 0, "-")]


def process_state(board: dict[str, Any]) -> str:
    """``running (pid N)``, ``stopped 2026-...`` after a clean exit, ``not running (pid N gone)`` after a kill."""
    if "error" in board:
        return str(board["error"])
    if board["running"]:
        return f"running (pid {board['pid']})"
    if board["stopped_ms"] is not None:
        return f"stopped {iso(board['stopped_ms'])}"
    return f"not running (pid {board['pid']} gone)"


def stream_live(board: dict[str, Any], label: str, now: int) -> dict[str, Any]:
    """A stream's live state for ``etl status --json``: its process, and the connection that carries it."""
    carrying = next((state for state in board["connections"] if label in state["streams"]), None)
    connection = None
    if carrying is not None:
        up = carrying["up"] and board["running"]
        connection = {"url": carrying["url"], "up": up,
                      "connected": iso(carrying["connected_ms"]) if up else None,
                      "reconnects": carrying["reconnects"], "last_error": carrying["last_error"],
                      "last_message_age_s": (now - carrying["last_message_ms"]) // 1000
                      if carrying["last_message_ms"] else None}
    return {"running": board["running"], "pid": board["pid"], "process": process_state(board),
            "connection": connection}

