"""Declared plugin options and their validation.

Each plugin lists its options as ``Option`` objects; the core checks a pipeline's table against them
so that every plugin reports unknown keys, wrong types and bad choices the same way, with the key named.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
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
    ValueError with a message for anything else. ``secret`` values (passwords, DSNs, keys) are shown
    as ``***`` in every message about them.
    """

    type: type = str
    default: Any = REQUIRED
    help: str = ""
    choices: tuple[Any, ...] | None = None
    item_type: type | None = None
    check: Callable[[Any], Any] | None = field(default=None, compare=False)
    secret: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class FromEnv(str):
    """A string that took (part of) its value from ``${NAME}``: it may hold a secret, so messages never show it.

    ``secrets`` holds the substituted values, so a message that quotes the string reworked (a path pattern
    filled in with a symbol) still has them blanked out.
    """

    secrets: tuple[str, ...] = ()


def shown(value: Any, secret: bool = False) -> str:
    """``value`` as a message may show it: ``***`` when it is secret or came from the environment."""
    values = value if isinstance(value, list) else [value]
    return "***" if secret or any(isinstance(item, FromEnv) for item in values) else repr(value)


def mask_secrets(message: str, declared: Mapping[str, Option], settings: Mapping[str, Any]) -> str:
    """Blank out, in a plugin's own message, secret options' values and what came from the environment.

    Values shorter than four characters are left alone: they would blank out unrelated words and digits.
    """
    for name, value in settings.items():
        if not isinstance(value, str):
            continue
        option = declared.get(name)
        hidden = [*getattr(value, "secrets", ()), *([value] if option is not None and option.secret else [])]
        for text in sorted(hidden, key=len, reverse=True):
            if len(text) >= 4:
                message = message.replace(text, "***")
    return message


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
    check_known(given, declared, where)
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


def check_known(given: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Refuse the first key not in ``valid``, suggesting the valid key it was probably meant to be.

    Runs before any check of missing keys: ``symbol =`` for ``symbols =`` is a typo to name, not a missing key.
    """
    valid = sorted(valid)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"Unknown key {unknown[0]!r} in {where}{hint}; valid keys: {', '.join(valid) or 'none'}")


def _help(option: Option) -> str:
    return f" ({option.help})" if option.help else ""


def _coerce(name: str, option: Option, value: Any, where: str, base_dir: Path) -> Any:
    expected = option.type
    if expected is Path:
        if not isinstance(value, str):
            raise ConfigError(f"Key {name!r} in {where} must be a path string, not {shown(value, option.secret)}")
        path = Path(value).expanduser()
        value = path if path.is_absolute() else (base_dir / path)
    elif expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(
            f"Key {name!r} in {where} must be {_TYPE_NAMES.get(expected, expected.__name__)}, "
            f"not {shown(value, option.secret)}"
        )
    items = value if isinstance(value, list) else [value]
    if expected is list and option.item_type is not None:
        for item in items:
            if not isinstance(item, option.item_type):
                raise ConfigError(
                    f"Key {name!r} in {where} must hold {_TYPE_NAMES.get(option.item_type)} items, "
                    f"not {shown(item, option.secret)}"
                )
    if option.choices is not None:
        for item in items:
            if item not in option.choices:
                valid = ", ".join(str(choice) for choice in option.choices)
                raise ConfigError(
                    f"Invalid value {shown(item, option.secret)} for {name!r} in {where}; valid values: {valid}"
                )
    if option.check is not None:
        try:
            checked = option.check(value)
        except ValueError as exc:
            reason = mask_secrets(str(exc), {name: option}, {name: value})
            value_shown = shown(value, option.secret)
            raise ConfigError(f"Invalid value {value_shown} for {name!r} in {where}: {reason}") from None
        if checked is not None:
            value = checked
    return value
