"""A pipeline's symbols when its ``symbols`` is a selector: resolved at the start of every run, recorded in the ledger.

``etl.selectors`` says what a selector means; this module asks the source for the venue's listing, turns the
choice into the source configuration the run's units carry (the symbols as a plain list, as if typed), and
reports the symbols of the previous run that left the selection as skipped streams with the reason.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .log import get_logger, log_traceback
from .selectors import Choice, choose
from .stream import Stream

if TYPE_CHECKING:
    from .base import Listing, Source, SourceConfig
    from .config import PipelineSpec
    from .ledger import Ledger
    from .report import Report
    from .unit import SourcePool

log = get_logger("etl.universe")
LISTING = "<symbols>"  # the symbol of the stream a failed listing is reported under


def resolve(config: SourceConfig, source: Source, previous: tuple[str, ...] = ()) -> tuple[SourceConfig, Choice]:
    """The configuration with the selector's symbols (network: ``source.list_symbols``), and the choice."""
    selector = config.selector
    assert selector is not None
    choice = choose(selector, source.list_symbols(volumes=selector.top is not None), previous, source.name)
    return dataclasses.replace(config, symbols=choice.symbols), choice


def streams_of(config: SourceConfig, symbols: tuple[str, ...]) -> list[Stream]:
    """The streams ``symbols`` would have in this configuration (no network)."""
    from .plugins import registry

    return registry().get("source", config.plugin)(dataclasses.replace(config, symbols=symbols)).streams()


def last_streams(spec: PipelineSpec, ledger: Ledger) -> list[Stream]:
    """The pipeline's streams as ``etl status`` shows them: a selector's choice of the last run, else the typed list."""
    return streams_of(spec.source, ledger.last_symbols(spec.name) if spec.source.selector else spec.source.symbols)


def for_run(spec: PipelineSpec, sources: SourcePool, ledger: Ledger, run_id: str,
            report: Report) -> tuple[PipelineSpec, list[Stream]]:
    """The pipeline with its selector resolved, and the streams that are results of this run without being units:
    those of the symbols that left the selection (skipped, with why) or, when the listing failed, one failed
    stream ``<dataset>/<symbols>`` naming the cause (the pipeline then runs nothing)."""
    try:
        config, choice = resolve(spec.source, sources.get(spec.source), ledger.last_symbols(spec.name))
    except Exception as exc:
        from .committer import describe

        log_traceback(log, "symbol listing traceback", exc, pipeline=spec.name)
        failed = Stream(spec.source.dataset, LISTING)
        report.result(failed).error = f"cannot list the symbols of the selector: {describe(exc)}"
        return dataclasses.replace(spec, source=dataclasses.replace(spec.source, symbols=())), [failed]
    _record(spec, ledger, run_id, choice)
    skipped = []
    for symbol, why in choice.dropped:
        log.info("symbol left the selection", pipeline=spec.name, symbol=symbol, reason=why)
        for stream in streams_of(spec.source, (symbol,)):
            report.result(stream).skipped = f"{why}; its stream stops"
            skipped.append(stream)
    if not choice.chosen:
        log.warning("the selector matches no symbol", pipeline=spec.name, selector=spec.source.selector.describe())
    return dataclasses.replace(spec, source=config), skipped


def _record(spec: PipelineSpec, ledger: Ledger, run_id: str, choice: Choice) -> None:
    rows = [{"symbol": listing.symbol, "status": listing.status, "quote_volume": listing.quote_volume,
             "selected": 1} for listing in choice.chosen]
    rows += [{"symbol": symbol, "status": None, "selected": 0, "note": why} for symbol, why in choice.dropped]
    ledger.record_symbols(run_id, spec.name, rows)


def current(spec: PipelineSpec) -> list[Listing]:
    """``etl symbols``: the pipeline's symbols now, each with its listing status (and 24h quote volume when the
    selector ranks by it): a selector's choice, or the typed list as the venue lists it (``not listed`` for a
    symbol it does not; ``unknown`` when the source cannot list its symbols)."""
    from .base import Listing
    from .plugins import registry

    source = registry().get("source", spec.source.plugin)(spec.source)
    try:
        if spec.source.selector is not None:
            return list(resolve(spec.source, source)[1].chosen)
        if not source.lists_symbols():
            return [Listing(symbol, "unknown") for symbol in spec.source.symbols]
        listed = {listing.symbol: listing for listing in source.list_symbols()}
        return [listed.get(symbol, Listing(symbol, "not listed")) for symbol in spec.source.symbols]
    finally:
        source.close()
