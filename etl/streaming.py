"""``etl stream``: follow live sources into the same transforms, committer, sinks and checkpoints as a batch run.

Nothing missing, nothing half-formed. Each stream has a follower: a thread that owns the stream's one
``Execution`` (so warm-up, gap detection and transforms carry on from batch to batch) and feeds it, in time
order, first a REST heal from the checkpoint (the same ``fetch`` that ``etl run`` uses), then the closed rows
its live connection delivers. A live row after a hole (a reconnect, missed frames) first heals the hole from
REST; a row already delivered (a repeated or late frame) is dropped. Every (re)connection heals again from
where the stream stands, and so does a stream whose next bar is overdue on the clock (a stalled connection, a
venue that closes a bar only by the next one). Checkpoints advance only when the committer has written every
sink, so a SIGKILL loses nothing: the next start heals from the checkpoint.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .live import Connections, Listener, Subscription
from .log import get_logger
from .timeframes import iso

if TYPE_CHECKING:
    import polars as pl

    from .base import Source, Stream
    from .runner import Work
    from .unit import WorkUnit

log = get_logger("etl.streaming")

_RECONNECTED = object()
OVERDUE_MS = 10_000  # past a bar's end, well beyond a venue's usual closing frame: then REST is asked


@dataclass
class Follower:
    """One stream's thread: heal, then live rows, into the committer, in time order."""

    unit: WorkUnit
    work: Work
    stop: threading.Event
    heals: threading.Semaphore  # shared by the pipeline's followers: ``concurrency`` REST heals at once
    inbox: queue.Queue[Any] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        from .report import Tally
        from .unit import Execution

        self.source = self.work.sources.get(self.unit.source)
        self.committer = self.work.committer
        self.tally = Tally()
        self.execution = Execution(self.unit, self.work.sources, self.tally)
        self.expected = self.unit.start
        self.healed_once = False
        self.overdue_heal_at = 0
        self.quiet_heals = 0

    @property
    def stream(self) -> Stream:
        return self.unit.stream

    def run(self) -> None:
        from .committer import describe

        try:
            self.heal(last_closed(self.stream))
            while not self.stop.is_set():
                try:
                    item = self.inbox.get(timeout=0.1)
                except queue.Empty:
                    self.heal_if_overdue()
                    continue
                if item is _RECONNECTED:
                    self.heal(last_closed(self.stream))
                else:
                    self.take(item)
        except Exception as exc:
            self.committer.fail(self.stream, describe(exc))
        finally:
            self.tally.drain().apply(self.work.report, self.stream)

    def heal(self, until: int) -> None:
        """Fill ``[where the stream stands, until)`` from REST; the first heal reads the warm-up too. At most
        ``concurrency`` streams heal at once (``heals``): at a start or a reconnect every stream heals, and a
        request in flight per stream would hold a client, and its memory, per stream."""
        start = self.expected if self.healed_once else self.execution.fetch_start
        self.healed_once = True
        if start >= until:
            return
        before = self.expected
        with self.heals:
            self.submit(self.execution.feed(self.source.fetch(self.stream, start, until), self.unit.batch_rows))
        if self.expected > before:
            log.info("live heal", stream=self.stream.label, window=f"{iso(before)}..{iso(self.expected)}")

    def heal_if_overdue(self) -> None:
        """Heal from REST when the next bar closed ``OVERDUE_MS`` ago on the clock and no live row brought it.
        Venues that close a bar by the next one (Hyperliquid) send nothing after a quiet coin's last bar, and a
        stalled connection sends nothing at all: their bars still land, as REST confirms them. At most once a
        bar (and every ``OVERDUE_MS``); while the heals bring nothing (no trades), at doubling intervals up to
        64 bars, so quiet streams do not spend the venue's request budget."""
        from .timeframes import next_bar, now_ms, timeframe_ms

        timeframe = self.stream.timeframe
        now = now_ms()
        if not timeframe or now < max(next_bar(self.expected, timeframe) + OVERDUE_MS, self.overdue_heal_at):
            return
        before = self.expected
        self.heal(last_closed(self.stream))
        self.quiet_heals = 0 if self.expected > before else self.quiet_heals + 1
        self.overdue_heal_at = now + max(timeframe_ms(timeframe), OVERDUE_MS) * 2 ** min(self.quiet_heals, 6)

    def take(self, frame: pl.DataFrame) -> None:
        """Closed live rows: a hole before them is healed first; rows already delivered are dropped."""
        import polars as pl

        ms = epoch_ms(frame)
        first = int(ms.min())
        self.overdue_heal_at = self.quiet_heals = 0
        if first > self.expected:
            self.heal(first)
            self.expected = max(self.expected, first)
        fresh = frame.filter(ms >= self.expected) if first < self.expected else frame
        if fresh.height:
            self.submit(self.execution.feed([fresh.sort(pl.col("ts"))], 1))

    def submit(self, batches: Any) -> None:
        for batch in batches:
            batch.tally.apply(self.work.report, self.stream)
            if not self.committer.submit(self.stream, batch, batch.next_ms):
                raise StreamStopped(self.stream.label)
            self.expected = max(self.expected, batch.next_ms)
            if self.stop.is_set():
                return


class StreamStopped(Exception):
    """The committer refused the stream's batches (a sink refused one): its follower stops."""


def last_closed(stream: Stream) -> int:
    """The start of the bar still forming: everything before it is closed."""
    from .timeframes import floor_ts, now_ms

    now = now_ms()
    return floor_ts(now, stream.timeframe) if stream.timeframe else now


def epoch_ms(frame: pl.DataFrame) -> pl.Series:
    """A live frame's ``ts`` as epoch milliseconds, whether the source gave integers or datetimes."""
    ts = frame["ts"]
    return ts if ts.dtype.is_integer() else ts.dt.epoch("ms")


def listener_for(followers: dict[Stream, Follower]) -> Listener:
    """Routes a connection's news to the followers of its streams."""

    def rows(stream: Stream, frame: pl.DataFrame) -> None:
        if stream in followers:
            followers[stream].inbox.put(frame)

    def connected(subscription: Subscription) -> None:
        for stream in subscription.streams:
            if stream in followers:
                followers[stream].inbox.put(_RECONNECTED)

    def rejected(stream: Stream, reason: str) -> None:
        if stream in followers:
            followers[stream].committer.fail(stream, reason)

    return Listener(rows, connected, rejected)


def follower_drive(stop: threading.Event) -> Callable[[Work], None]:
    """The live driver of a pipeline run (``etl.runner.Drive``): a follower per unit until ``stop``."""

    def drive(work: Work) -> None:
        from .runner import start_unit

        heals = threading.Semaphore(work.workers)
        followers = {unit.stream: Follower(unit, work, stop, heals) for unit in work.units if start_unit(unit, work)}
        if followers:
            follow(work.sources.get(work.units[0].source), followers, stop)

    return drive


def follow(source: Source, followers: dict[Stream, Follower], stop: threading.Event) -> None:
    """Run the followers and the source's connections until ``stop``; the caller's committer drains after."""
    threads = [threading.Thread(target=follower.run, name=f"etl-follow-{stream.label}", daemon=True)
               for stream, follower in followers.items()]
    for thread in threads:
        thread.start()
    connections = Connections(source, source.subscriptions(list(followers)), listener_for(followers), stop)
    connections.start()
    stop.wait()
    for thread in threads:
        thread.join(4)
    connections.join(1)
