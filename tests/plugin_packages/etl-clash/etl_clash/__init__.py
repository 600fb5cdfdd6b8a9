"""A plugin that claims a name a built-in already has: the host must refuse the ambiguity loudly."""

import etl


class OtherFiles(etl.Source):
    name = "files"


@etl.hookimpl
def register_sources(register):
    register(OtherFiles)
