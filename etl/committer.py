"""One writer per pipeline run: batches from every stream, committed together, then checkpointed.

Sinks are written by one thread anyway (a DuckDB file has one writer), and a transaction's commit costs
the same for 20 rows as for 500,000. So stream threads hand their batches to the committer, which takes
what is waiting (up to ``commit_rows``), writes it to every sink in one transaction each, and only then
advances the checkpoint of every stream in the group. If a grouped write fails, each batch is retried on
its own, so a bad batch fails its own stream and no other.

The sinks open at the first write and close after the pipeline's run, so a run whose source is still
retrying holds no file another run needs. A file another process holds (``SinkBusyError``) is waited for,
up to the pipeline's ``sink_wait``; past that the pipeline is locked: its streams stop, nothing is written,
no checkpoint moves, and the runner reports it once instead of failing every stream. A committer that
``yields`` (``etl stream``'s, which would otherwise hold its files all day) hands them over after a commit to a
process that asks for them, and takes them back when it is done (``etl.handoff``).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import faults, handoff
from .errors import SinkBusyError
from .log import get_logger, log_traceback

if TYPE_CHECKING:
    from .base import Sink, Stream
    from .checkpoint import Checkpoints
    from .progress import Progress
    from .report import Report
    from .unit import Batch

log = get_logger("etl.committer")


@dataclass
class SinkSlot:
    sink: Sink
    table: str


@dataclass
class _Item:
    stream: Stream
    batch: Batch
    end: int
    size: int


_STOP = object()
# How long a group short of commit_rows waits for the next batch. Streams that deliver batches faster than this
# fill whole groups (a DuckDB commit of 20k rows writes as much as one of 500k); slow sources commit at once.
GATHER_SECONDS = 0.05
IDLE_LOOK_SECONDS = 0.5  # how often a yielding committer with nothing to write looks for a request for its files

class Committer:
    def __init__(self, slots: list[SinkSlot], dataset: Any, checkpoints: Checkpoints, report: Report,
                 progress: Progress, commit_rows: int, commit_bytes: int, sink_wait: float, yields: bool = False):
        self.slots = slots
        self.dataset = dataset
        self.checkpoints = checkpoints
        self.report = report
        self.progress = progress
        self.commit_rows = commit_rows
        self.commit_bytes = commit_bytes
        self.sink_wait = sink_wait
        self.yields = yields
        # Why the sinks could not be had while another process held them: the pipeline did not run.
        self.locked: str | None = None
        # Why the sinks failed to open otherwise: every stream that brings a batch fails with it.
        self._unusable: str | None = None
        self._opened = False
        self.failed: set[Stream] = set()
        # Streams a sink refused: their later batches must not land, or the checkpoint would pass the refused one.
        # A stream whose source failed keeps the batches it had already handed over.
        self._refused: set[Stream] = set()
        self._positions: dict[str, int] = {}
        self._started: dict[Stream, float] = {}
        self._queue: queue.Queue[Any] = queue.Queue()
        self._room = threading.Condition()
        # Batches in flight (queued or being written) are held to a commit and a half, in rows and in bytes:
        # the sinks always have the next group ready, and memory does not grow with the width of the rows.
        self._queued_rows = self._queued_bytes = 0
        self._max_queued_rows = max(commit_rows + commit_rows // 2, 1)
        self._max_queued_bytes = max(commit_bytes + commit_bytes // 2, 1)
        self._thread = threading.Thread(target=self._loop, name="etl-committer", daemon=True)
        self._stopping = threading.Event()  # ``etl stream`` stopped: no more waiting for a sink another process holds

    def __enter__(self) -> Committer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.yields:
            self._stopping.set()
        self._queue.put(_STOP)
        self._thread.join()
        log.debug("stream shutdown", pipeline=self.report.pipeline, phase="committer drained")
        if self._opened:
            close_sinks(self.slots)
        log.debug("stream shutdown", pipeline=self.report.pipeline, phase="sinks closed")

    def stop_waiting(self) -> None:
        """``etl stream`` was stopped: stop waiting for a sink file another process holds (a stream waits for it as
        long as it runs), as the exit has 5 s. Nothing waiting for it is written, no checkpoint moves, and the
        pipeline is reported locked; the next start heals what it would have written."""
        self._stopping.set()

    def start_stream(self, stream: Stream, start: int, key: str | None = None) -> None:
        """A unit of ``stream`` starts at ``start``; ``key`` names its checkpoint entry (a backfill's chunk)."""
        self._positions[key or stream.label] = start
        self._started.setdefault(stream, time.monotonic())

    def submit(self, stream: Stream, batch: Batch, end: int) -> bool:
        """Queue a batch (blocks while a commit and a half waits); False once the stream has failed or the
        pipeline is locked out of its sinks."""
        if stream in self.failed or self.locked:
            return False
        rows, size = batch.frame.height, batch.frame.estimated_size()
        with self._room:
            self._room.wait_for(lambda: self._queued_rows == 0 or self._fits(rows, size))
            self._queued_rows += rows
            self._queued_bytes += size
        self._queue.put(_Item(stream, batch, end, size))
        return True

    def _fits(self, rows: int, size: int) -> bool:
        return (self._queued_rows + rows <= self._max_queued_rows
                and self._queued_bytes + size <= self._max_queued_bytes)

    def fail(self, stream: Stream, error: str) -> None:
        self.failed.add(stream)
        result = self.report.result(stream)
        if result.error is None:
            result.error = error
            log.error("stream failed", pipeline=self.report.pipeline, stream=stream.label, error=error)

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            try:  # a yielding committer with its files open looks for a request while no batch comes as well
                item = self._queue.get(timeout=IDLE_LOOK_SECONDS) if self.yields and self._opened else self._queue.get()
            except queue.Empty:
                self._hand_over_if_asked()
                continue
            if item is _STOP:
                return
            group, rows, size = [item], item.batch.frame.height, item.size
            while rows < self.commit_rows and size < self.commit_bytes:
                try:
                    item = self._queue.get(timeout=GATHER_SECONDS)
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
                rows += item.batch.frame.height
                size += item.size
            live = [item for item in group if item.stream not in self._refused]
            if live and self._open():
                self._commit(live)
                self._hand_over_if_asked()
            elif self._unusable:
                for item in live:
                    self.fail(item.stream, self._unusable)
            with self._room:
                self._queued_rows -= rows
                self._queued_bytes -= size
                self._room.notify_all()

    def _hand_over_if_asked(self) -> None:
        """A yielding committer closes its sinks when another process asks for their files."""
        if self.yields and handoff.requested(self._requests()):
            close_sinks(self.slots)
            self._opened = False
            log.info("sinks handed over", pipeline=self.report.pipeline)

    def _requests(self) -> list[Any]:
        return [slot.sink.request_file() for slot in self.slots]

    def _open(self) -> bool:
        """Open the sinks for the first write; True once they are open, False if they cannot be. A yielding
        committer that handed its files over first waits until nobody asks for them."""
        if self._opened or self.locked or self._unusable:
            return self._opened
        if self.yields:
            handoff.wait_unrequested(self._requests(), self._stopping)
        try:
            self._open_waiting()
        except SinkBusyError as exc:
            waited = "the stream stopped while it waited" if self._stopping.is_set() else f"waited {self.sink_wait}s"
            self.locked = f"{exc}; {waited} for it, nothing was written"
            log.warning("pipeline locked out of its sinks", pipeline=self.report.pipeline, error=self.locked)
        except Exception as exc:
            self._unusable = f"cannot open sinks: {describe(exc)}"
            log.error("sinks failed to open", pipeline=self.report.pipeline, error=self._unusable)
        else:
            self._opened = True
        return self._opened

    def _open_waiting(self) -> None:
        """Open every sink, trying again while another process holds one, until ``sink_wait`` has passed (or
        the stream stops)."""
        def waiting(exc: SinkBusyError) -> None:
            log.warning("sink held by another process; waiting", pipeline=self.report.pipeline, error=str(exc),
                        wait_s=self.sink_wait)

        # A batch run's last batches wait for the file as long as its first; a stream stops waiting when it stops.
        closing = self._stopping if self.yields else None
        handoff.while_busy(lambda: open_sinks(self.slots), self.sink_wait, self._requests(), waiting, closing)

    def _commit(self, group: list[_Item]) -> None:
        try:
            self._write([item.batch.frame for item in group], len({item.stream for item in group}) < len(group))
        except Exception as exc:
            if len({item.stream for item in group}) > 1:
                for item in group:
                    if item.stream not in self._refused:
                        self._commit([item])
                return
            self._refused.add(group[0].stream)
            log_traceback(log, "stream traceback", exc, pipeline=self.report.pipeline, stream=group[0].stream.label)
            self.fail(group[0].stream, describe(exc))
            return
        self.checkpoints.advance_many([
            (item.batch.key or item.stream.label, item.batch.next_ms, item.batch.frame.height, item.batch.next_keys)
            for item in group
        ])
        faults.point("after_batch")
        for item in group:
            result = self.report.result(item.stream)
            result.rows += item.batch.frame.height
            key, position = item.batch.key or item.stream.label, min(item.batch.next_ms, item.end)
            self.progress.advance(position - self._positions[key], item.batch.frame.height)
            self._positions[key] = position
            result.duration = time.monotonic() - self._started[item.stream]

    def _write(self, frames: list[Any], repeats_a_stream: bool) -> None:
        """Write the group as one frame; two batches of one stream may share a key (a re-sent trade id):
        the later one wins, as it would have in two commits."""
        import polars as pl

        frames = [frame for frame in frames if frame.height]
        if not frames:
            return
        frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
        if repeats_a_stream:
            frame = frame.unique(subset=list(self.dataset.key), keep="last", maintain_order=True)
        for index, slot in enumerate(self.slots):
            if index:
                faults.point("between_sinks")
            faults.point("sink_commit")
            slot.sink.store(frame, self.dataset, slot.table)


def open_sinks(slots: list[SinkSlot]) -> None:
    """Open every sink or none: holding one file while waiting for another could make two runs wait for
    each other, so a failure closes the sinks already open before it is raised."""
    opened: list[SinkSlot] = []
    try:
        for slot in slots:
            slot.sink.open()
            opened.append(slot)
    except BaseException:
        close_sinks(opened)
        raise


def close_sinks(slots: list[SinkSlot]) -> None:
    for slot in slots:
        try:
            slot.sink.close()
        except Exception as exc:
            log.error("sink failed to close", sink=slot.sink.name, error=str(exc))


def describe(exc: BaseException) -> str:
    from .errors import EtlError

    if isinstance(exc, EtlError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
