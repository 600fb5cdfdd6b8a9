"""structlog set-up: readable on a terminal, JSON lines under cron or with ``--log-format json``.

Logs go to stderr so that stdout carries only what a command prints for people or scripts.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "dsn")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = "***"
    return event


def configure(log_format: str = "auto", verbosity: int = 0) -> None:
    """``verbosity``: -1 warnings only (``-q``), 0 info, 1 debug (``-v``)."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    stream = sys.stderr
    as_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info if as_json else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
