"""Exceptions shared by the core and plugins.

The split matters to the runner: a ``ConfigError`` stops everything before any work (exit 2), a
``TransientError`` is retried, anything else raised while a stream runs fails only that stream (exit 1).
"""


class EtlError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(EtlError):
    """The pipeline file or a plugin option is wrong; nothing has run."""


class PluginError(EtlError):
    """A plugin could not be loaded or registered."""


class CheckpointError(EtlError):
    """A checkpoint or backfill record exists but cannot be read; never silently restarted."""


class LockedError(EtlError):
    """Another live process holds this pipeline's lock."""


class SourceError(EtlError):
    """A source could not deliver data for a stream."""


class TransientError(SourceError):
    """A failure worth retrying: timeouts, resets, 5xx, rate limits.

    ``retry_after`` is the server's requested pause in seconds, when it gave one.
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(SourceError):
    """A failure that retrying cannot fix: unknown symbol, bad request, bad credentials."""


class SinkError(EtlError):
    """A sink refused a batch (for example a column type conflict)."""
