"""Built-in ccxt plugin for market-etl (in progress)."""
