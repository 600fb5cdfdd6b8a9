"""Built-in transforms plugin for market-etl (in progress)."""
