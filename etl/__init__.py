"""market-etl: the public API for plugin authors.

    import etl

    class CoinbaseSource(etl.Source):
        name = "coinbase"
        ...

    @etl.hookimpl
    def register_sources(register):
        register(CoinbaseSource)
"""

from .base import BatchContext, Listing, PluginContext, Sink, Source, SourceConfig, Stream, Transform
from .datasets import Dataset
from .errors import (
    ConfigError,
    EtlError,
    PermanentError,
    SinkBusyError,
    SinkError,
    SourceError,
    TransientError,
)
from .hookspecs import hookimpl
from .options import REQUIRED, Option

__all__ = [
    "REQUIRED",
    "BatchContext",
    "ConfigError",
    "Dataset",
    "EtlError",
    "Listing",
    "Option",
    "PermanentError",
    "PluginContext",
    "Sink",
    "SinkBusyError",
    "SinkError",
    "Source",
    "SourceConfig",
    "SourceError",
    "Stream",
    "Transform",
    "TransientError",
    "hookimpl",
]
