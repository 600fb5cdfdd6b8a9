"""Write pipeline files from plain Python data.

Tests build pipelines as dicts (so a suite can add or break one key at a time) and must hand the core a
real TOML file, because ``etl.config.load`` is the validation path users hit. Only what a pipeline file
holds is supported: tables, arrays of tables, strings, numbers, booleans and lists; a dict inside an
array-of-tables item or a list is written as an inline table.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text for ``data``: nested dicts become ``[tables]``, lists of dicts ``[[arrays of tables]]``."""
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).strip() + "\n"


def _table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {key: value for key, value in data.items() if not _is_section(value)}
    sections = {key: value for key, value in data.items() if _is_section(value)}
    if path and (scalars or not sections):
        lines.append(f"\n[{_dotted(path)}]")
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in sections.items():
        if isinstance(value, Mapping):
            _table(value, [*path, key], lines)
            continue
        for item in value:
            lines.append(f"\n[[{_dotted([*path, key])}]]")
            for item_key, item_value in item.items():
                lines.append(f"{_key(item_key)} = {_value(item_value)}")


def _is_section(value: Any) -> bool:
    return isinstance(value, Mapping) or _is_table_array(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)


def _dotted(path: list[str]) -> str:
    return ".".join(_key(part) for part in path)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(key)} = {_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) to a pipeline file")
