"""Built-in binance plugin for market-etl (in progress)."""
