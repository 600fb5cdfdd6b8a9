"""Built-in yahoo plugin for market-etl (in progress)."""
