"""structlog set-up: readable on a terminal, JSON lines under cron or with ``--log-format json``.

Logs go to stderr so that stdout carries only what a command prints for people or scripts. Libraries that
log through the standard library (yfinance, urllib3, botocore) go through the same renderer, so under
``--log-format json`` every stderr line is JSON.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "dsn")
_tracebacks = False


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = "***"
    return event


class _LibraryHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler, told apart so that configuring again replaces it."""


def configure(log_format: str = "auto", verbosity: int = 0) -> None:
    """``verbosity``: -1 warnings only (``-q``), 0 info, 1 debug (``-v``).

    Stream failures carry their traceback in the JSON log, and on the console only with ``-v``: a person at a
    terminal reads the one-line ``FAILED`` message first, as a plain traceback (the same text whether or not
    ``rich`` happens to be installed, so a log reads the same on every machine). Libraries log warnings and
    errors (everything with ``-v``): their chatter below that (yfinance's cookie and crumb lines) is not ours to show.
    """
    global _tracebacks
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    stream = sys.stderr
    as_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    _tracebacks = as_json or verbosity >= 1
    renderer: Any = (structlog.processors.JSONRenderer() if as_json
                     else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback))
    shared = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        structlog.processors.format_exc_info if as_json else structlog.processors.StackInfoRenderer(),
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    _route_library_logging(stream, shared, renderer, logging.DEBUG if verbosity >= 1 else logging.WARNING)


def _route_library_logging(stream: Any, shared: list[Any], renderer: Any, level: int) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _LibraryHandler)]:
        root.removeHandler(handler)
    handler = _LibraryHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
    ))
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)


def log_traceback(logger: Any, event: str, exc: BaseException, **fields: Any) -> None:
    """Log ``exc`` with its traceback where tracebacks belong: the JSON log, and the console with ``-v``."""
    if _tracebacks:
        logger.error(event, exc_info=exc, **fields)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
