"""A live source's rows over a window, read through the core's own connection code (``etl.live.Connections``).

The conformance check "a live source's window equals its batch window" compares them with ``fetch`` over the
same window: what ``etl stream`` stores must equal, row for row, what ``etl backfill`` stores (DESIGN 9), and
the core heals from REST only what the live path did not bring. So every bar of the window must come from the
live path alone, closed (a forming bar's partial values differ from the batch row) and in ``fetch``'s format.

The window is the ``bars`` bars that begin after every connection is up: a bar already forming when a
connection came up may have been missed in part, and is the REST heal's business, not the live path's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from etl.base import Source, Stream
from etl.timeframes import iso, next_bar, now_ms, timeframe_ms

if TYPE_CHECKING:
    import polars as pl


@dataclass
class LiveRead:
    """What the live path delivered per stream, the window it covers, and what went wrong on the way."""

    start: int = 0
    end: int = 0
    frames: dict[Stream, list[pl.DataFrame]] = field(default_factory=dict)
    rejected: dict[Stream, str] = field(default_factory=dict)
    connected: int = 0

    def rows(self, source: Source, stream: Stream) -> pl.DataFrame:
        """The stream's rows in the window, conformed as the runner conforms them; a repeated key keeps its
        first delivery, as ``etl stream`` does."""
        import polars as pl

        from etl.datasets import conform, dataset, empty_frame
        from etl.unit import between

        schema = dataset(stream.dataset)
        frames = [conform(frame, schema, stream, source.stored_name) for frame in self.frames.get(stream, [])]
        if not frames:
            return empty_frame(schema)
        rows = pl.concat(frames, how="diagonal_relaxed").filter(between(self.start, self.end))
        return rows.unique(subset=list(schema.key), keep="first", maintain_order=True).sort("ts")

    def complete(self, streams: list[Stream]) -> bool:
        """Every stream has a row at or after the window's last bar (or was refused)."""
        return all(stream in self.rejected or any(
            frame.height and _last_ms(frame) >= self.end - timeframe_ms(stream.timeframe)
            for frame in self.frames.get(stream, [])) for stream in streams)


def read_live_window(source: Source, streams: list[Stream], bars: int, timeout: float) -> LiveRead:
    """Follow ``streams`` through the source's subscriptions until ``bars`` whole bars after the connections
    came up have closed on every stream, or ``timeout`` seconds (wall clock) have passed."""
    from etl.live import Connections, Listener

    read, lock, stop = LiveRead(), threading.Lock(), threading.Event()
    subscriptions = source.subscriptions(streams)

    def rows(stream: Stream, frame: pl.DataFrame | list[Any]) -> None:
        if isinstance(frame, list):  # raw records, which the source makes a frame of in one go
            frame = source.live_frame(stream, frame)
        with lock:
            read.frames.setdefault(stream, []).append(frame)

    def connected(_: object) -> None:
        with lock:
            read.connected += 1

    def rejected(stream: Stream, reason: str) -> None:
        read.rejected[stream] = reason

    connections = Connections(source, subscriptions, Listener(rows, connected, rejected), stop)
    connections.start()
    deadline = time.monotonic() + timeout
    try:
        while read.connected < len(subscriptions) and time.monotonic() < deadline:
            time.sleep(0.05)
        timeframe = streams[0].timeframe
        read.start = next_bar(now_ms(), timeframe)
        read.end = read.start + bars * timeframe_ms(timeframe)
        while time.monotonic() < deadline:
            with lock:
                if read.connected and read.complete(streams):
                    break
            time.sleep(0.1)
    finally:
        stop.set()
        connections.join(5)
    if not read.connected:
        raise AssertionError(f"{source.name}: no connection came up in {timeout:g}s "
                             f"({', '.join(s.url for s in subscriptions)})")
    return read


def check_live_window(source: Source, bars: int, clock_speed: float = 1) -> LiveRead:
    """Fail unless the live path's rows over ``bars`` bars equal ``fetch`` over the same window, per stream."""
    from etl.datasets import dataset

    from . import checks
    from .source_suite import read_window

    streams = source.streams()
    step_s = timeframe_ms(streams[0].timeframe) / 1000 / clock_speed
    live = read_live_window(source, streams, bars, (bars + 3) * step_s + 20)
    assert not live.rejected, f"the fake venue refused streams: {live.rejected}"
    for stream in streams:
        batch = read_window(source, stream, live.start, live.end)
        checks.check_same_rows(live.rows(source, stream), batch.rows, list(dataset(stream.dataset).key),
                               f"{stream.label} live [{iso(live.start)}, {iso(live.end)}) versus fetch")
    return live


def _last_ms(frame: pl.DataFrame) -> int:
    from etl.streaming import epoch_ms

    return int(epoch_ms(frame).max())
