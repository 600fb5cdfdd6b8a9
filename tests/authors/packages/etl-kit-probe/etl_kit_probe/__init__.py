"""A source, a sink and a transform that are correct by default and break one contract on request.

``defect = "..."`` switches on one known mistake (a newest-first page, an inclusive end, a sink that
appends, a transform without warm-up...), so the tests in ``tests/authors`` can prove that each
conformance check fails on exactly the mistake it names, and that the correct plugins pass.
"""

import etl

from .sink import ProbeSink
from .source import ProbeSource
from .transform import ProbeSma


@etl.hookimpl
def register_sources(register):
    register(ProbeSource)


@etl.hookimpl
def register_sinks(register):
    register(ProbeSink)


@etl.hookimpl
def register_transforms(register):
    register(ProbeSma)
