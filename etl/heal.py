"""``etl heal``: fetch the gaps the ledger recorded again, and record what the venue answered.

Each open gap becomes a span (``windows.recorded``; gaps whose spans meet share one), run by the same runner,
warm-up, transforms, sinks and committer as ``etl run``, under the pipeline's lock. A span runs on past its gap
by the transforms' warm-up, so the features of the bars after it are those a run over the filled series gives.
Its progress goes to a checkpoint file of the heal alone (``heals/``, removed when the heal ends): the pipeline's
checkpoint never moves, backwards or forwards, and no span runs past it.
A gap the venue answers with no rows again is ``confirmed`` and never fetched again; one it now has bars for is
``filled``, and bars still missing inside it are recorded as a smaller gap, open, by the heal run itself.
The gaps of a dataset the source cannot fetch (``Source.live_only``: live liquidations) stay open, untouched.
"""

from __future__ import annotations

import time
import uuid

from .checkpoint import Checkpoints
from .config import PipelineSpec, Project
from .gapbook import open_gaps
from .gaps import Gap
from .ledger import Ledger
from .log import get_logger
from .report import StreamResult
from .runner import Drive, Outcome, _run_locked
from .stream import Stream
from .timeframes import iso
from .unit import build_transforms, chain_warmup, chunk_key
from .windows import Span, gap_spans, recorded


def heal(project: Project, names: tuple[str, ...], since: int | None = None, progress: bool = False,
         drive: Drive | None = None) -> Outcome:
    """Fetch every open gap of the named (or all) pipelines again, those starting at ``since`` or later."""
    outcome = Outcome("heal")
    began = time.monotonic()
    for spec in project.select(names):
        ledger = Ledger(project.state_dir)
        gaps = open_gaps(ledger, spec.name, since)
        ledger.close()
        if gaps and _fetchable(spec):
            _heal_pipeline(project, spec, gaps, outcome, progress, drive)
    outcome.duration = time.monotonic() - began
    return outcome


def _fetchable(spec: PipelineSpec) -> bool:
    """False (and a log line) for a dataset its source only follows live: there is nothing to ask again."""
    from .plugins import registry

    if spec.source.dataset not in registry().get("source", spec.source.plugin).live_only:
        return True
    get_logger("etl.heal").info("gaps left open", pipeline=spec.name,
                                reason=f"{spec.source.plugin} serves no {spec.source.dataset} history")
    return False


def _heal_pipeline(project: Project, spec: PipelineSpec, gaps: dict[str, list[Gap]], outcome: Outcome,
                   progress: bool, drive: Drive | None) -> None:
    path = project.state_dir / "heals" / f"{spec.name}-{uuid.uuid4().hex}.json"
    transforms = build_transforms(spec.name, spec.transforms, project.base_dir, project.state_dir)
    pipeline = Checkpoints(project.state_dir / "checkpoints" / f"{spec.name}.json")
    limits = {label: next_ms for label in gaps if (next_ms := pipeline.next(label)) is not None}

    def after(stream: Stream) -> int:
        return chain_warmup(transforms, stream)

    def spans(stream: Stream) -> list[Span]:
        return gap_spans(stream, gaps.get(stream.label, []), after(stream), limits.get(stream.label))

    first = len(outcome.results)
    try:
        _run_locked(project, spec, "heal", path, {"kind": "heal", "pipeline": spec.name},
                    recorded(gaps, after, limits), outcome, progress, drive)
        checkpoints = Checkpoints(path)
    finally:
        path.unlink(missing_ok=True)
    judged = [_judge(result, gaps.get(result.stream.label, []), spans(result.stream), checkpoints)
              for result in outcome.results[first:]]
    ledger = Ledger(project.state_dir)
    ledger.record_gap_outcomes(spec.name, [row for rows in judged for row in rows])
    ledger.close()


def _judge(result: StreamResult, gaps: list[Gap], spans: list[Span], checkpoints: Checkpoints
           ) -> list[tuple[str, str, str, str]]:
    """(stream, start, end, outcome) of each gap of a stream: ``confirmed`` when its span held no rows or the
    same gap was found again, else ``filled``; nothing for a stream that failed (its gaps stay open)."""
    if result.error:
        return []
    found_again = set(result.gaps)
    judged = []
    for gap in gaps:
        span = next(span for span in spans if span.start <= gap.start < span.end)
        empty = checkpoints.rows(chunk_key(result.stream, span.start)) == 0
        outcome = "confirmed" if empty or gap in found_again else "filled"
        result.counters[f"gaps_{outcome}"] = result.counters.get(f"gaps_{outcome}", 0) + 1
        judged.append((result.stream.label, iso(gap.start), iso(gap.end), outcome))
    return judged
