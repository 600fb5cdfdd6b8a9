"""Symbol selectors: ``symbols = { match = ["*USDT"], exclude = ["*UP*"], status = "trading", top = 50,
by = "quote_volume" }`` instead of a hand-typed list.

The file is checked without network (``parse``). At the start of every run the source lists the venue's symbols
(``Source.list_symbols``) and ``choose`` picks the pipeline's; the choice is recorded in the run ledger, so the
next run can tell which symbols left the selection and why: a delisted symbol's stream is reported as skipped
with the reason (the run does not fail), a new listing joins and starts at ``start`` like any new stream.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .options import check_known, shown

if TYPE_CHECKING:
    from .base import Listing

KEYS = ("match", "exclude", "status", "top", "by")
STATUSES = ("trading", "all")
RANKINGS = ("quote_volume",)


@dataclass(frozen=True)
class Selector:
    """Glob patterns (``fnmatch``, case-sensitive, on the venue's symbol), a listing status, an optional rank."""

    match: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    status: str = "trading"
    top: int | None = None
    by: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"match": list(self.match), "exclude": list(self.exclude), "status": self.status, "top": self.top,
                "by": self.by}


def parse_selector(raw: dict[str, Any], where: str) -> Selector:
    """The selector a ``symbols`` table describes; ConfigError naming the key and what is valid."""
    check_known(raw, KEYS, where)
    patterns = {key: _patterns(raw[key], f"{where}.{key}") for key in ("match", "exclude") if key in raw}
    status = raw.get("status", "trading")
    if status not in STATUSES:
        raise ConfigError(f"Invalid value {shown(status)} for {where}.status; valid: {', '.join(STATUSES)}")
    top, by = raw.get("top"), raw.get("by")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ConfigError(f"{where}.top must be a whole number of symbols, at least 1, not {shown(top)}")
    if by is not None and by not in RANKINGS:
        raise ConfigError(f"Invalid value {shown(by)} for {where}.by; valid: {', '.join(RANKINGS)}")
    if (top is None) != (by is None):
        raise ConfigError(f"{where}: 'top' and 'by' go together (top = 50, by = \"quote_volume\"); "
                          f"{'by' if top is not None else 'top'} is missing")
    return Selector(patterns.get("match", ("*",)), patterns.get("exclude", ()), status, top, by)


def _patterns(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{where} must be a list of symbol patterns such as [\"*USDT\"], not {shown(value)}")
    return tuple(value)


@dataclass(frozen=True)
class Choice:
    """What a selector picked from a listing, and the symbols of the previous run it no longer picks, with why."""

    chosen: tuple[Listing, ...]
    dropped: tuple[tuple[str, str], ...] = ()

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(listing.symbol for listing in self.chosen)


def choose(selector: Selector, listings: list[Listing], previous: tuple[str, ...] = (), source: str = "") -> Choice:
    """The listings the selector picks, in the venue's order (by rank with ``top``), and why each symbol of
    ``previous`` (the last run's choice) is not picked now."""
    matching = [listing for listing in listings if _matches(selector, listing.symbol)]
    wanted = [listing for listing in matching if selector.status == "all" or listing.status == "trading"]
    if selector.top is not None:
        wanted = sorted(wanted, key=lambda listing: -(listing.quote_volume or 0.0))[: selector.top]
    chosen = {listing.symbol for listing in wanted}
    by_symbol = {listing.symbol: listing for listing in listings}
    dropped = tuple((symbol, _why(selector, by_symbol.get(symbol), source)) for symbol in previous
                    if symbol not in chosen)
    return Choice(tuple(wanted), dropped)


def _matches(selector: Selector, symbol: str) -> bool:
    return (any(fnmatch.fnmatchcase(symbol, pattern) for pattern in selector.match)
            and not any(fnmatch.fnmatchcase(symbol, pattern) for pattern in selector.exclude))


def _why(selector: Selector, listing: Listing | None, source: str) -> str:
    if listing is None:
        return f"delisted: {source} no longer lists it"
    if not _matches(selector, listing.symbol):
        return "no longer matches the selector"
    if selector.status == "trading" and listing.status != "trading":
        return f"delisted: {source} lists it as {listing.status}"
    return f"no longer in the top {selector.top} by {selector.by}"
