"""The hooks a plugin implements; each receives a ``register`` callback."""

import pluggy

hookspec = pluggy.HookspecMarker("etl")
hookimpl = pluggy.HookimplMarker("etl")


@hookspec
def register_sources(register):
    """Register Source subclasses with register(SourceClass)."""


@hookspec
def register_transforms(register):
    """Register Transform subclasses with register(TransformClass)."""


@hookspec
def register_sinks(register):
    """Register Sink subclasses with register(SinkClass)."""


@hookspec
def register_datasets(register):
    """Register extra dataset schemas with register(etl.Dataset(...))."""
