"""Built-in hyperliquid plugin for market-etl (in progress)."""
