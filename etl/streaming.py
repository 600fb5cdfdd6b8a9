"""``etl stream``: follow live sources into the same transforms, committer, sinks and checkpoints as a batch run.

Nothing missing, nothing half-formed. Each stream has a follower: a thread that owns the stream's one
``Execution`` (so warm-up, gap detection and transforms carry on from batch to batch) and feeds it, in time
order, first a REST heal from the checkpoint (the same ``fetch`` that ``etl run`` uses), then the closed rows
its live connection delivers. A live row after a hole (a reconnect, missed frames) first heals the hole from
REST; a row already delivered (a repeated or late frame) is dropped. Every (re)connection heals again from
where the stream stands, and so does a stream whose next bar is overdue on the clock (a stalled connection, a
venue that closes a bar only by the next one). Checkpoints advance only when the committer has written every
sink, so a SIGKILL loses nothing: the next start heals from the checkpoint. A stop (SIGTERM) has 5 s in all
(DESIGN 9): no heal starts after it, one under way ends with its page in flight (the pages read are committed),
and the followers and connections get ``STOP_SECONDS`` together; a follower still busy then (a REST request held
by a slow venue) is left behind with its batch uncommitted, for the next start to heal.

Point datasets (trades, liquidations: no timeframe) have no next bar to expect. Their checkpoint is the last
committed millisecond with the keys committed at it, so a heal or a live row of that millisecond is delivered
once (``Execution`` drops the keys it committed). A hole shows only where the source numbers its rows
consecutively (``Source.live_sequence``: Binance's aggregate trade ids), and is healed at once; otherwise every
(re)connection heals. What REST cannot serve (``Source.live_only``) is never healed: the window a connection
was away is recorded as a gap. A busy stream's inbox is drained in bulk, its frames made one batch.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .live import Connections, Listener, Subscription
from .log import get_logger
from .timeframes import iso

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from .base import Source, Stream
    from .liveboard import LiveBoard
    from .runner import Work
    from .unit import WorkUnit

log = get_logger("etl.streaming")

_RECONNECTED = object()
OVERDUE_MS = 10_000  # past a bar's end, well beyond a venue's usual closing frame: then REST is asked
# A point stream's follower waits this long after a first row for the rows that follow it: a batch costs ~2 ms of
# polars work whatever its size, so at one trade a message, batches of one would cap a stream at ~500 trades/s.
POINT_GATHER_SECONDS = 0.25
DRAIN_MOST = 50_000  # inbox items made one batch at most (a point stream's frames of about a second at full rate)
_ID = "__live_id"
# A venue pushes an event up to this long after it happened (Binance's liquidations once a second, Bybit's every
# 500 ms, plus the wire): a connection's last frame does not vouch for the second before it.
PUSH_MARGIN_MS = 1_000
HOLE_PAUSES = (0.2, 0.5, 0.0)  # seconds after each heal that leaves a hole in a sequence, before the next try
# From the stop, how long the followers and the connections have to finish, all together: the committer, the sinks,
# the ledger and the process's exit must still fit DESIGN 9's 5 s on a machine loaded far past its cores.
STOP_SECONDS = 2.0


@dataclass(frozen=True)
class Away:
    """A connection was away from the last frame before it dropped to the first after it came back (epoch ms)."""

    start: int
    end: int


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
        self.point = not self.stream.timeframe
        self.healable = self.stream.dataset not in self.source.live_only
        self.sequence = self.source.live_sequence.get(self.stream.dataset)
        self.last_id = self.resumed_id()  # the highest ``sequence`` id committed
        self.last_row_ms: int | None = None  # the newest live row received
        # A stream REST cannot heal, resumed from a checkpoint or asked to start at a ``start``: what happened
        # from there to its first connection nobody heard, a gap.
        resumed_or_asked = self.unit.committed_keys or self.unit.start == self.unit.source.start
        self.unheard_since = self.unit.start if not self.healable and resumed_or_asked else None
        # Stopping, and a batch went to the committer since, or a heal was skipped or cut short: nothing more may
        # follow (a hole behind the checkpoint that no next start would heal).
        self.halted = False
        self.abandoned = False  # still busy when the stop's time ran out: what fails it now is the stop's doing

    @property
    def stream(self) -> Stream:
        return self.unit.stream

    def resumed_id(self) -> int | None:
        """The highest id the checkpoint names at its millisecond: a resumed stream whose heal brings nothing new
        (REST lagging, a quiet market) checks its first live row against it, so trades between the checkpoint and
        that row are a hole to heal, not a silent one."""
        keys = self.execution.instant_keys
        if self.sequence not in keys or not self.unit.committed_keys:
            return None
        return max(int(key[keys.index(self.sequence)]) for key in self.unit.committed_keys)

    def run(self) -> None:
        from .committer import describe

        try:
            self.heal(last_closed(self.stream))
            while not self.stop.is_set():
                try:
                    first = self.inbox.get(timeout=0.1)
                except queue.Empty:
                    self.heal_if_overdue()
                    continue
                if self.point:
                    self.stop.wait(POINT_GATHER_SECONDS)
                for item in self.drained(first):
                    if self.stop.is_set():
                        break
                    if item is _RECONNECTED:
                        self.connected()
                    elif isinstance(item, Away):
                        self.away(item)
                    else:
                        self.take_points(item) if self.point else self.take(item)
            if not self.healable:
                self.keep_received()
        except Exception as exc:
            if not self.abandoned:
                self.committer.fail(self.stream, describe(exc))
        finally:
            if not self.abandoned:  # the report may be in the ledger already
                self.tally.drain().apply(self.work.report, self.stream)

    def keep_received(self) -> None:
        """At stop, a stream REST cannot heal keeps the rows already received: no restart could fetch them."""
        try:
            first = self.inbox.get_nowait()
        except queue.Empty:
            return
        for item in self.drained(first):
            if isinstance(item, Away):
                self.away(item)
            elif item is not _RECONNECTED:
                self.take_points(item)

    def drained(self, first: Any) -> Iterator[Any]:
        """``first`` and what else waits in the inbox, in order: a point stream's rows between two events (a
        reconnection, a connection away) come as one frame; a bar stream's frames one by one."""
        items = [first]
        while len(items) < DRAIN_MOST:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        rows: list[Any] = []
        for item in items:
            if item is not _RECONNECTED and not isinstance(item, Away) and self.point:
                rows.append(item)
                continue
            if rows:
                yield self.frame_of(rows)
                rows = []
            yield item if item is _RECONNECTED or isinstance(item, Away) else self.frame_of([item])
        if rows:
            yield self.frame_of(rows)

    def frame_of(self, items: list[Any]) -> pl.DataFrame:
        """One frame of what ``parse_live`` gave: frames, and lists of records made a frame by the source."""
        import polars as pl

        records = [record for item in items if isinstance(item, list) for record in item]
        frames = [item for item in items if not isinstance(item, list)]
        if records:
            frames.append(self.records_frame(records))
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")

    def records_frame(self, records: list[Any]) -> pl.DataFrame:
        """The records as one frame; when one of them is unreadable, the others, one by one, and a log line
        for each that is not (a frame the venue garbled must not fail the stream)."""
        import polars as pl

        try:
            return self.source.live_frame(self.stream, records)
        except Exception:
            readable = []
            for record in records:
                try:
                    readable.append(self.source.live_frame(self.stream, [record]))
                except Exception as exc:
                    log.warning("live record unreadable", stream=self.stream.label,
                                error=f"{type(exc).__name__}: {exc}", record=str(record)[:120])
            return pl.concat(readable, how="diagonal_relaxed") if readable else self.source.live_frame(self.stream, [])

    def connected(self) -> None:
        """A connection came up: heal from REST what its absence cost; for a stream REST cannot heal, the time
        before its first connection (since its checkpoint, or its ``start``) is a recorded gap."""
        from .timeframes import now_ms

        if self.unheard_since is not None:
            since, self.unheard_since, now = self.unheard_since, None, now_ms()
            why = "the stream was stopped" if self.unit.committed_keys else "nothing listened before the stream began"
            if since < now:
                self.record_gap(since, now, self.unhealable(why))
        self.heal(last_closed(self.stream))

    def heal(self, until: int) -> None:
        """Fill ``[where the stream stands, until)`` from REST; the first heal reads the warm-up too. A stream
        REST cannot serve is not healed (``away`` records what its connections missed). At most ``concurrency``
        streams heal at once (``heals``): at a start or a reconnect every stream heals, and a request in flight
        per stream would hold a client, and its memory, per stream."""
        start = self.expected if self.healed_once else self.execution.fetch_start
        self.healed_once = True
        if start >= until or not self.healable:
            return
        before = self.expected
        if not self.turn_to_heal():
            self.halted = True  # the rows this heal was for wait for the next start: none after them may land
            return
        try:
            frames = until_set(self.stop, self.source.fetch(self.stream, start, until))
            rows = self.submit(self.execution.feed(frames, self.unit.batch_rows))
        finally:
            self.heals.release()
        self.halted = self.halted or self.stop.is_set()  # a heal the stop cut short: the same
        if self.expected > before:
            log.info("live heal", stream=self.stream.label, window=f"{iso(before)}..{iso(self.expected)}", rows=rows)

    def turn_to_heal(self) -> bool:
        """Wait for one of the ``concurrency`` heals; False once stopping (``follow`` then wakes every waiting
        follower): a heal begun then would only delay the exit, and the next start heals from the checkpoint."""
        self.heals.acquire()
        if self.stop.is_set():
            self.heals.release()
            return False
        return True

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

    def take_points(self, frame: pl.DataFrame) -> None:
        """Live rows of a point dataset: rows before the last committed millisecond are old (that millisecond's
        committed keys the execution drops); with a sequence, repeated ids go and a jump heals first."""
        import polars as pl

        if not frame.height:
            return
        ms = epoch_ms(frame)
        self.last_row_ms = max(self.last_row_ms or 0, int(ms.max()))
        if int(ms.min()) < self.expected:
            frame = frame.filter(ms >= self.expected)
        if self.sequence:
            self.take_sequenced(frame.with_columns(pl.col(self.sequence).cast(pl.Int64).alias(_ID)))
        elif frame.height:
            self.submit(self.execution.feed([frame.sort("ts", maintain_order=True)], 1))

    def take_sequenced(self, frame: pl.DataFrame) -> None:
        """Rows in id order, each once; where an id jumps (missed or out-of-order frames), REST first heals
        through the millisecond of the row after the jump (the hole's trades may share it)."""
        import polars as pl

        frame = frame.unique(_ID, keep="first").sort(_ID)
        if self.last_id is None and frame.height:
            self.vouch_before(frame)
        if self.last_id is not None:
            frame = frame.filter(pl.col(_ID) > self.last_id)
        if not frame.height:
            return
        ids = frame[_ID]
        before = ids.shift(1, fill_value=ids[0] - 1 if self.last_id is None else self.last_id)
        holes = (ids - before > 1).arg_true().to_list()
        for low, high in itertools.pairwise(dict.fromkeys([0, *holes, frame.height])):
            part = frame.slice(low, high - low)
            if low in holes:
                self.heal_hole(int(part[_ID][0]), int(epoch_ms(part)[0]) + 1)
                if self.last_id is not None:
                    part = part.filter(pl.col(_ID) > self.last_id)
            if part.height:
                self.submit(self.execution.feed([part.drop(_ID)], 1))

    def vouch_before(self, frame: pl.DataFrame) -> None:
        """A stream with no id to check its first live row against (a first start whose heal brought nothing:
        REST lagging, a quiet market) heals once more, through that row's millisecond: what REST serves then
        is stored, and the ids it reaches are what the live rows are checked against."""
        self.heal(int(epoch_ms(frame).min()) + 1)

    def heal_hole(self, next_id: int, until: int) -> None:
        """Heal the ids before ``next_id`` from REST, through ``until``. REST may lag the stream by a moment, so
        a heal that leaves the hole is tried again, twice, after a pause; a hole REST still does not fill is a
        recorded gap, never a silent one."""
        log.info("live hole", stream=self.stream.label, after=self.last_id, next=next_id)
        for pause in HOLE_PAUSES:
            before = self.expected
            self.heal(until)
            if self.last_id is None or self.last_id >= next_id - 1 or self.stop.is_set():
                return
            time.sleep(pause)
        self.record_gap(before, until, f"REST did not serve the ids {self.last_id + 1}..{next_id - 1} the stream "
                                       "skipped: recorded as a gap")

    def away(self, window: Away) -> None:
        """A connection was away: a stream REST heals is healed by the reconnection; for one it cannot, the
        window is a recorded gap (ledger, ``etl status --gaps``) and a log line. It starts ``PUSH_MARGIN_MS``
        before the last frame heard (events of that second may not have been pushed yet), but not before the
        last row received."""
        if not self.healable:
            self.record_gap(max(window.start - PUSH_MARGIN_MS, self.last_row_ms or 0), window.end,
                            self.unhealable("its connection was away"))

    def unhealable(self, why: str) -> str:
        return f"{why}, and {self.unit.source.plugin} serves no {self.stream.dataset} history: recorded as a gap"

    def record_gap(self, start: int, end: int, reason: str) -> None:
        """The ledger has the gap before any row after it is committed (``Report.record_gaps``)."""
        from .gaps import Gap

        self.work.report.gaps(self.stream, [Gap(start, end, 0)])
        log.warning("live gap", stream=self.stream.label, window=f"{iso(start)}..{iso(end)}", reason=reason)

    def submit(self, batches: Any) -> int:
        """Hand ``batches`` to the committer, in order; the rows handed. Once stopping, the batch in hand is the
        last: the rest of a heal cut short waits for the next start, and no later row may land after it (a hole
        behind the checkpoint that no heal would see)."""
        import polars as pl

        rows = 0
        if self.halted:
            return rows
        for batch in batches:
            for gap in batch.tally.found_gaps:
                log.warning("live gap", stream=self.stream.label, start=iso(gap.start), end=iso(gap.end), bars=gap.bars)
            batch.tally.apply(self.work.report, self.stream)
            if not self.committer.submit(self.stream, batch, batch.next_ms):
                raise StreamStopped(self.stream.label)
            self.expected = max(self.expected, batch.next_ms)
            if self.sequence and batch.frame.height:
                self.last_id = max(self.last_id or 0, int(batch.frame[self.sequence].cast(pl.Int64).max()))
            rows += batch.frame.height
            if self.stop.is_set():
                self.halted = True
                break
        return rows


class StreamStopped(Exception):
    """The committer refused the stream's batches (a sink refused one): its follower stops."""


def until_set(stop: threading.Event, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
    """``frames`` (a REST fetch's pages) until ``stop`` is set: no request starts after it. The pages already
    read still make a batch, checkpointed at their last row, so a heal cut short loses nothing."""
    for frame in frames:
        yield frame
        if stop.is_set():
            return


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

    def rows(stream: Stream, frame: pl.DataFrame | list[Any]) -> None:
        if stream in followers:
            followers[stream].inbox.put(frame)

    def connected(subscription: Subscription) -> None:
        for stream in subscription.streams:
            if stream in followers:
                followers[stream].inbox.put(_RECONNECTED)

    def rejected(stream: Stream, reason: str) -> None:
        if stream in followers:
            followers[stream].committer.fail(stream, reason)

    def interrupted(subscription: Subscription, start: int, end: int) -> None:
        for stream in subscription.streams:
            if stream in followers:
                followers[stream].inbox.put(Away(start, end))

    return Listener(rows, connected, rejected, interrupted)


def follower_drive(stop: threading.Event, state_dir: Path) -> Callable[[Work], None]:
    """The live driver of a pipeline run (``etl.runner.Drive``): a follower per unit until ``stop``; the
    connections' state goes to ``state_dir`` for ``etl status`` (``etl.liveboard``)."""

    def drive(work: Work) -> None:
        from .liveboard import LiveBoard
        from .runner import start_unit

        heals = threading.Semaphore(work.workers)
        followers = {unit.stream: Follower(unit, work, stop, heals) for unit in work.units if start_unit(unit, work)}
        if followers:
            follow(work.sources.get(work.units[0].source), followers, stop, LiveBoard(state_dir, work.report.pipeline))

    return drive


def follow(source: Source, followers: dict[Stream, Follower], stop: threading.Event, board: LiveBoard) -> None:
    """Run the followers and the source's connections until ``stop``; the caller's committer drains after. A
    source that cannot describe its connections (a market it cannot follow) fails its streams, named, at once."""
    from .committer import describe

    try:
        subscriptions = source.subscriptions(list(followers))
    except Exception as exc:
        for stream, follower in followers.items():
            follower.committer.fail(stream, describe(exc))
        return
    threads = []
    for stream, follower in followers.items():
        if stop.is_set():  # stopped while starting (200 threads take seconds on a busy machine): start no more
            break
        threads.append(threading.Thread(target=follower.run, name=f"etl-follow-{stream.label}", daemon=True))
        threads[-1].start()
    connections = Connections(source, subscriptions, board.listener(listener_for(followers)), stop)
    connections.start()
    board.watch(stop)
    wind_down(list(followers.values()), threads, connections, board.pipeline)
    board.stopped()


def wind_down(followers: list[Follower], threads: list[threading.Thread], connections: Connections,
              pipeline: str) -> None:
    """After the stop: wake what waits (for a turn to heal, for a sink file another process holds), then give the
    followers and the connections ``STOP_SECONDS`` in all, not each: 200 streams must not add up their waits."""
    log.debug("stream shutdown", pipeline=pipeline, phase="stop seen")
    followers[0].committer.stop_waiting()
    for _ in followers:  # the followers waiting for their turn to heal (``turn_to_heal``) wake, and heal nothing
        followers[0].heals.release()
    deadline = time.monotonic() + STOP_SECONDS
    for thread in [*threads, connections]:
        thread.join(max(deadline - time.monotonic(), 0.0))
    log.debug("stream shutdown", pipeline=pipeline, phase="followers and connections joined")
    started = zip(followers, threads, strict=False)  # every follower, unless stopped while starting
    abandon([follower for follower, thread in started if thread.is_alive()], pipeline)


def abandon(followers: list[Follower], pipeline: str) -> None:
    """Leave the followers still busy when the stop's time ran out (a REST request waiting on the venue's rate
    limit, or on a slow answer) to end with the process: the committer takes nothing they hand it after its
    drain, so their checkpoints stay where the sinks are, and the next start heals from there."""
    for follower in followers:
        follower.abandoned = True
    if followers:
        log.warning("stream followers left busy at stop", pipeline=pipeline, streams=len(followers),
                    first=followers[0].stream.label)
