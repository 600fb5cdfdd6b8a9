"""Reading a TOML file the user wrote (a pipeline file, a symbol map), with the errors a user can act on."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError


def read_toml(path: Path, where: str, what: str) -> dict[str, Any]:
    """The file's table. A missing, unreadable or invalid file is a ``ConfigError`` that starts with ``where``
    (the file itself, or the key that named it) and says ``what`` was looked for."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {what}: {exc.strerror}") from None
