"""Exceptions shared by the core and plugins.

The split matters to the runner: a ``ConfigError`` stops everything before any work (exit 2), a
``TransientError`` is retried, anything else raised while a stream runs fails only that stream (exit 1).
"""


class EtlError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(EtlError):
    """The pipeline file or a plugin option is wrong; nothing has run."""


class CheckpointError(EtlError):
    """A checkpoint or backfill record exists but cannot be read; never silently restarted."""


class LockedError(EtlError):
    """Another live process holds this pipeline's lock."""


class SourceError(EtlError):
    """A source could not deliver data for a stream."""


class TransientError(SourceError):
    """A failure worth retrying: timeouts, resets, 5xx, rate limits.

    ``retry_after`` is the server's requested pause in seconds, when it gave one. ``host_down`` says the
    failure is the host's, not the request's (no answer at all, 502/503/504, a rate limit or a ban): when
    retries run out on such a failure, the run stops calling the host. A 500 may be one request's (Hyperliquid
    answers an unknown coin with one), so it does not count.
    """

    def __init__(self, message: str, retry_after: float | None = None, *, host_down: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.host_down = host_down


class PermanentError(SourceError):
    """A failure that retrying cannot fix: unknown symbol, bad request, bad credentials."""


class SinkError(EtlError):
    """A sink refused a batch (for example a column type conflict)."""


class SinkBusyError(SinkError):
    """Another process holds what a sink writes to (a DuckDB file's write lock); the runner waits for it,
    up to the pipeline's ``sink_wait``, then reports the pipeline locked instead of failing its streams."""


# Exit codes of the ``etl`` command (DESIGN.md section 4).
EXIT_OK = 0
EXIT_FAILED = 1  # at least one stream failed; the others ran and committed
EXIT_USAGE = 2  # usage or configuration error; nothing ran
EXIT_LOCKED = 75  # another run holds the pipeline's lock; nothing ran


def shorten(text: str, limit: int = 200) -> str:
    """``text`` on one line and at most ``limit`` characters, cut at a word boundary when there is one in its
    second half: for quoting an answer's body in an error message without cutting a word in two."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 4]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + " ..."
