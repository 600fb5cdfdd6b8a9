"""A source's ``symbol_map``: the pipeline's canonical symbols and what each venue calls them.

    symbol_map = { "BTC" = { polygon = "X:BTCUSD", yahoo = "BTC-USD", binance = "BTCUSDT" } }
    symbol_map = "maps/crypto.toml"     # the same tables in a file: BTC = { polygon = "X:BTCUSD", ... }

The pipeline's ``symbols`` are canonical names, stored as written in the ``symbol`` column whichever source
delivered a row; each source (the primary and every fallback) is asked for its own name, or the canonical
name where the map has none. A file is read once, when the pipeline file is loaded, so ``etl validate`` and
``etl run`` refuse the same mistakes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .options import shown
from .tomlfile import read_toml

SymbolMap = dict[str, dict[str, str]]


def load_symbol_map(value: Any, where: str, base_dir: Path, plugins: Iterable[str]) -> SymbolMap:
    """The map of ``where`` (an inline table, or a TOML file relative to the pipeline file's folder), checked:
    every entry a table of ``plugin = "symbol"``, every plugin one of ``plugins`` (the installed sources)."""
    if value is None:
        return {}
    entry_where = f"{where}.{{}}"
    if isinstance(value, str):
        path = base_dir / Path(value).expanduser()
        value = read_toml(path, where, f"symbol map file {path}")
        entry_where = f"key {{!r}} of symbol map {path} ({where})"
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of symbols or a path to a TOML file, not {shown(value)}")
    known = set(plugins)
    for symbol, entry in value.items():
        _check_entry(entry, entry_where.format(symbol), known)
    return {symbol: dict(entry) for symbol, entry in value.items()}


def _check_entry(entry: Any, where: str, plugins: set[str]) -> None:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table of plugin = \"symbol\" (e.g. {{ yahoo = \"BTC-USD\" }}), "
                          f"not {shown(entry)}")
    for plugin, symbol in entry.items():
        if plugin not in plugins:
            raise ConfigError(f"Unknown source {plugin!r} in {where}; installed sources: {', '.join(sorted(plugins))}")
        if not isinstance(symbol, str) or not symbol:
            raise ConfigError(f"{plugin!r} in {where} must be a non-empty string, not {shown(symbol)}")
