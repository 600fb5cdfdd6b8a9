"""Built-in bybit plugin for market-etl (in progress)."""
