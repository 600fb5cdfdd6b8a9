"""Built-in sqlite plugin for market-etl (in progress)."""
