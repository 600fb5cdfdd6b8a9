"""Declared plugin options and their validation.

Each plugin lists its options as ``Option`` objects; the core checks a pipeline's table against them
so that every plugin reports unknown keys, wrong types and bad choices the same way, with the key named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

REQUIRED: Any = object()

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "a table", Path: "a path"}


@dataclass(frozen=True)
class Option:
    """One option a plugin accepts in its pipeline table.

    ``type`` is str, int, float, bool, list, dict or Path (a string resolved against the pipeline
    file's folder); ``choices`` limits the values (for a list, each item); ``check`` may raise
    ValueError with a message for anything else.
    """

    type: type = str
    default: Any = REQUIRED
    help: str = ""
    choices: tuple[Any, ...] | None = None
    item_type: type | None = None
    check: Callable[[Any], Any] | None = field(default=None, compare=False)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def positive(value: float) -> None:
    """An ``Option`` check for counts, rates and durations that must be more than 0."""
    if value <= 0:
        raise ValueError("must be positive")


def validate_options(
    declared: Mapping[str, Option], given: Mapping[str, Any], where: str, base_dir: Path
) -> dict[str, Any]:
    """Check ``given`` against ``declared``; return every option with defaults filled in.

    ``where`` names the table in messages, e.g. ``pipelines.btc.sinks[0] in pipelines.toml``.
    """
    unknown = sorted(set(given) - set(declared))
    if unknown:
        valid = ", ".join(sorted(declared)) or "none"
        raise ConfigError(f"Unknown key {unknown[0]!r} in {where}; valid keys: {valid}")
    result: dict[str, Any] = {}
    for name, option in declared.items():
        if name not in given:
            if option.required:
                raise ConfigError(f"Missing required key {name!r} in {where}" + _help(option))
            default = option.default
            if isinstance(default, Path) and not default.is_absolute():
                default = base_dir / default
            result[name] = default
            continue
        result[name] = _coerce(name, option, given[name], where, base_dir)
    return result


def _help(option: Option) -> str:
    return f" ({option.help})" if option.help else ""


def _coerce(name: str, option: Option, value: Any, where: str, base_dir: Path) -> Any:
    expected = option.type
    if expected is Path:
        if not isinstance(value, str):
            raise ConfigError(f"Key {name!r} in {where} must be a path string, not {value!r}")
        path = Path(value).expanduser()
        value = path if path.is_absolute() else (base_dir / path)
    elif expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(
            f"Key {name!r} in {where} must be {_TYPE_NAMES.get(expected, expected.__name__)}, not {value!r}"
        )
    items = value if isinstance(value, list) else [value]
    if expected is list and option.item_type is not None:
        for item in items:
            if not isinstance(item, option.item_type):
                raise ConfigError(
                    f"Key {name!r} in {where} must hold {_TYPE_NAMES.get(option.item_type)} items, not {item!r}"
                )
    if option.choices is not None:
        for item in items:
            if item not in option.choices:
                valid = ", ".join(str(choice) for choice in option.choices)
                raise ConfigError(f"Invalid value {item!r} for {name!r} in {where}; valid values: {valid}")
    if option.check is not None:
        try:
            checked = option.check(value)
        except ValueError as exc:
            raise ConfigError(f"Invalid value {value!r} for {name!r} in {where}: {exc}") from None
        if checked is not None:
            value = checked
    return value
