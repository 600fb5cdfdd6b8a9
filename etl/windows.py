"""What each stream of a run fetches: its spans, from the checkpoints (or the ledger's gaps, for ``heal``).

A span is a window with the checkpoint entry it advances. ``run`` and ``stream`` give one span per stream, from
the stream's checkpoint. ``backfill`` cuts a long window into chunks of ``chunk`` bars, each with its own
checkpoint entry (``ohlcv/BTC/1m@2024-02-05T...``), so one stream's history spreads over the workers of a
cluster (or the threads here), and ``--resume`` continues each chunk where it stopped and skips the finished ones.
``heal`` gives a span per gap the ledger recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .timeframes import bar_starts, ceil_ts, floor_ts, next_bar, now_ms, timeframe_ms

if TYPE_CHECKING:
    from .base import Source, Stream
    from .checkpoint import Checkpoints
    from .config import PipelineSpec
    from .gaps import Gap

LIVE_END = 253_370_764_800_000  # 9999-01-01: a live stream's window has no end


@dataclass(frozen=True)
class Span:
    """``[start, end)`` to fetch; ``chunk_start`` set when the span is one chunk of a backfill."""

    start: int
    end: int
    resumed: bool
    chunk_start: int | None = None


Windows = Callable[["Stream", "Checkpoints", "Source"], list[Span]]


def last_closed(stream: Stream) -> int:
    """Never ask for the interval still forming: stop at the start of the current bar."""
    now = now_ms()
    return floor_ts(now, stream.timeframe) if stream.timeframe else now


def incremental(spec: PipelineSpec) -> Windows:
    """``etl run``: from the checkpoint (or ``start``) to ``end`` or the last closed bar."""

    def windows(stream: Stream, checkpoints: Checkpoints, source: Source) -> list[Span]:
        resumed = checkpoints.next(stream.label)
        start = resumed if resumed is not None else (spec.source.start if spec.source.start is not None else 0)
        end = spec.source.end if spec.source.end is not None else now_ms()
        return [Span(start, min(end, last_closed(stream)), resumed is not None)]

    return windows


def live(spec: PipelineSpec) -> Windows:
    """``etl stream``: from the checkpoint (or ``start``, or now) on, with no end but the pipeline's own."""

    def windows(stream: Stream, checkpoints: Checkpoints, source: Source) -> list[Span]:
        resumed = checkpoints.next(stream.label)
        start = resumed if resumed is not None else (
            spec.source.start if spec.source.start is not None else last_closed(stream))
        return [Span(start, spec.source.end if spec.source.end is not None else LIVE_END, resumed is not None)]

    return windows


def fixed(start: int, end: int, chunk: int) -> Windows:
    """``etl backfill``: ``[start, end)`` in chunks of ``chunk`` bars; the finished chunks are left out (all but
    the last, when every chunk is finished, so the stream still reports "up to date")."""

    def windows(stream: Stream, checkpoints: Checkpoints, source: Source) -> list[Span]:
        from .unit import chunk_key

        top = min(end, last_closed(stream))
        bounds = chunk_bounds(stream, start, top, chunk * source.row_interval_ms(stream))
        if len(bounds) <= 2:
            resumed = checkpoints.next(stream.label)
            return [Span(resumed if resumed is not None else start, top, resumed is not None)]
        checkpoints.plan_chunks(stream.label, bounds)
        spans = []
        for low, high in itertools.pairwise(bounds):
            resumed = checkpoints.next(chunk_key(stream, low))
            spans.append(Span(resumed if resumed is not None else low, high, resumed is not None, low))
        return [span for span in spans if span.start < span.end] or spans[-1:]

    return windows


def recorded(gaps: Mapping[str, list[Gap]], after: Callable[[Stream], int], limits: Mapping[str, int]) -> Windows:
    """``etl heal``: the stream's ``gap_spans``, ``after(stream)`` bars past each gap, none past
    ``limits[label]`` (the pipeline's checkpoint)."""

    def windows(stream: Stream, checkpoints: Checkpoints, source: Source) -> list[Span]:
        return gap_spans(stream, gaps.get(stream.label, []), after(stream), limits.get(stream.label))

    return windows


def gap_spans(stream: Stream, gaps: list[Gap], after: int, limit: int | None) -> list[Span]:
    """Spans from each gap's first missing bar through the bar that ended it and ``after`` bars more (the
    transforms' warm-up: their values there change once the gap is filled), up to ``limit``; spans that meet
    are one. The bar that ended a gap is read again so that bars still missing at its end are found as a gap
    again, as they are in its middle: each span is a chunk of its own, continuing from the bar before it.
    A stream without bars (trades) has its gap's span read again, no more: the source itself recorded it."""
    bounds: list[list[int]] = []
    for gap in sorted(gaps):
        end = gap.end
        for _ in range(1 + after if stream.timeframe else 0):
            end = next_bar(end, stream.timeframe or "")
        end = min(end, limit) if limit is not None else end
        if bounds and gap.start <= bounds[-1][1]:
            bounds[-1][1] = max(bounds[-1][1], end)
        else:
            bounds.append([gap.start, end])
    return [Span(start, end, False, start) for start, end in bounds]


def chunk_bounds(stream: Stream, start: int, end: int, span_ms: int) -> list[int]:
    """``start``, the chunk starts after it, and ``end``: chunks of ``span_ms`` aligned on the stream's bars
    (calendar months for ``1M``), so the same backfill always cuts at the same places."""
    if end <= start:
        return [start, end]
    if stream.timeframe == "1M":
        bars = max(1, span_ms // timeframe_ms("1M"))
        inner = bar_starts(start, end, "1M")[bars::bars]
    else:
        step = timeframe_ms(stream.timeframe) if stream.timeframe else 1
        first = ceil_ts(start, stream.timeframe) if stream.timeframe else start
        span = max(step, span_ms // step * step)
        inner = list(range(first + span, end, span))
    return [start, *[bound for bound in inner if start < bound < end], end]
