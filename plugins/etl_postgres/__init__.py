"""Built-in postgres plugin for market-etl (in progress)."""
