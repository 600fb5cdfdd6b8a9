"""Checkpoint files: where each stream of a pipeline (or of one backfill) continues.

A checkpoint holds, per stream, ``next``: the first timestamp not yet committed to every sink. Streams with
several rows per instant (trades) checkpoint at their last instant instead, with ``committed_at_next``, the
keys committed at it: trades of that millisecond that arrive later are still read, the others skipped. Files are
JSON for people to read, replaced atomically (temp file, fsync, rename, fsync of the folder), and a file
that exists but cannot be read is an error naming it, never a silent restart from scratch.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import threading
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
            self._save()

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.data.update(fields)
            self._save()

    def _save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=2) + "\n", "checkpoint_write")
