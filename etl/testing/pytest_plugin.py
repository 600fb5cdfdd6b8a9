"""pytest plugin of market-etl (registered through the ``pytest11`` entry point)."""
