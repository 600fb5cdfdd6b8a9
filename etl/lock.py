"""One run per pipeline: an flock on a file in the state dir.

The kernel drops an flock when its process dies, however it dies, so a lock left by a dead process
never blocks the next run; the pid written inside only serves the error message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import LockedError


class PipelineLock:
    def __init__(self, state_dir: Path, pipeline: str):
        self.path = state_dir / "locks" / f"{pipeline}.lock"
        self.pipeline = pipeline
        self._fd: int | None = None

    def __enter__(self) -> PipelineLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockedError(
                f"Pipeline {self.pipeline!r} is locked by another run (pid {holder}, lock {self.path}); nothing ran"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
