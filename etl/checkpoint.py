"""Checkpoint files: where each stream of a pipeline (or of one backfill) continues.

A checkpoint holds, per stream, ``next``: the first timestamp not yet committed to every sink. Streams with
several rows per instant (trades) checkpoint at their last instant instead, with ``committed_at_next``, the
keys committed at it: trades of that millisecond that arrive later are still read, the others skipped. A
backfill cut into chunks has an entry per chunk (``ohlcv/BTC/1m@2024-02-05T...``), committed in any order, and a
stream entry that follows their contiguous committed prefix. Files are
JSON for people to read, replaced atomically (temp file, fsync, rename, fsync of the folder), and a file
that exists but cannot be read is an error naming it, never a silent restart from scratch.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CheckpointError
from .timeframes import iso, now_ms

VERSION = 1


def atomic_write_text(path: Path, text: str, crash_point: str | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), crash_point)


def atomic_write_bytes(path: Path, data: bytes, crash_point: str | None = None) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole, even after a crash.

    Temp files of ``path`` that a killed process left behind are removed first: readers never see them
    (they are hidden, and end in .tmp), but a lake written for years would collect them.
    """
    from . import faults

    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if crash_point:
                faults.point(crash_point)
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


CHUNK_MARK = "@"


def chunk_label(label: str, chunk_start: int) -> str:
    """The checkpoint entry of the chunk of stream ``label`` that starts at ``chunk_start``."""
    return f"{label}{CHUNK_MARK}{iso(chunk_start)}"


def committed_prefix(bounds: list[int], entry_of: Callable[[int], dict[str, Any] | None]) -> int:
    """Where the chunks ``bounds`` cut (starts, then the end) are committed without a hole: the first chunk not
    finished stops it, at its own checkpoint or, never begun, at its start."""
    for low, high in itertools.pairwise(bounds):
        entry = entry_of(low)
        if entry is None:
            return low
        if entry["next_ms"] < high:
            return entry["next_ms"]
    return bounds[-1]


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON object written by this module; CheckpointError naming the path if it is unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{what} {path} is unreadable ({exc}); repair or remove it (removing restarts its streams "
            f"from their start)"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("streams", {}), dict):
        raise CheckpointError(f"{what} {path} is not a checkpoint object; repair or remove it")
    return data


class Checkpoints:
    """The checkpoint file of one pipeline or backfill; safe to update from several stream threads."""

    def __init__(self, path: Path, header: dict[str, Any] | None = None):
        self.path = path
        self._lock = threading.Lock()
        try:
            self.data = read_json(path, "Checkpoint")
        except FileNotFoundError:
            self.data = {"version": VERSION, **(header or {}), "streams": {}}
        self._validate()

    def _validate(self) -> None:
        for label, entry in self.data["streams"].items():
            if not isinstance(entry, dict) or not isinstance(entry.get("next_ms"), int):
                raise CheckpointError(f"Checkpoint {self.path}: stream {label!r} has no integer 'next_ms'")

    def next(self, label: str) -> int | None:
        entry = self.data["streams"].get(label)
        return entry["next_ms"] if entry else None

    def rows(self, label: str) -> int:
        """Rows committed under ``label``: 0 for a span that finished without any (the venue had nothing there)."""
        entry = self.data["streams"].get(label)
        return entry["rows"] if entry else 0

    def committed_at_next(self, label: str) -> tuple[tuple[Any, ...], ...]:
        """Keys already committed at ``next`` itself, for streams with several rows per instant (trades)."""
        entry = self.data["streams"].get(label) or {}
        return tuple(tuple(key) for key in entry.get("committed_at_next", ()))

    def advance_many(self, moves: list[tuple[str, int, int, tuple[tuple[Any, ...], ...]]]) -> None:
        """Record several streams' progress (in order) with one atomic write: for each, the label, the next
        timestamp, the rows committed, and the keys committed at that timestamp (empty for most streams)."""
        with self._lock:
            updated = iso(now_ms())
            for label, next_ms, rows, keys in moves:
                entry = self.data["streams"].get(label, {"rows": 0})
                self.data["streams"][label] = {
                    "next": iso(next_ms),
                    "next_ms": next_ms,
                    **({"committed_at_next": [list(key) for key in keys]} if keys else {}),
                    "rows": entry["rows"] + rows,
                    "updated": updated,
                }
            self._follow_chunks({label.partition(CHUNK_MARK)[0] for label, *_ in moves if CHUNK_MARK in label},
                                updated)
            self._save()

    def plan_chunks(self, label: str, bounds: list[int]) -> None:
        """Remember where a backfill cuts ``label`` into chunks (their starts, then the end), so that the stream's
        own entry can follow the chunks committed without a hole: the stream's checkpoint."""
        with self._lock:
            self.data.setdefault("chunks", {})[label] = bounds

    def _follow_chunks(self, labels: set[str], updated: str) -> None:
        """Each stream's entry: where its contiguous prefix of committed chunks ends (chunks commit in any order)."""
        streams = self.data["streams"]
        for label in labels:
            bounds = self.data.get("chunks", {}).get(label)
            if not bounds:
                continue
            prefix = committed_prefix(bounds, lambda low, label=label: streams.get(chunk_label(label, low)))
            rows = sum(entry["rows"] for key, entry in streams.items() if key.startswith(label + CHUNK_MARK))
            streams[label] = {"next": iso(prefix), "next_ms": prefix, "rows": rows, "updated": updated}

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.data.update(fields)
            self._save()

    def _save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=2) + "\n", "checkpoint_write")
