"""A plugin that fails to import, as a plugin with a missing dependency would."""

raise ImportError("etl_broken needs the 'unobtainium' package")
