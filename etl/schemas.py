"""Dataset schemas: the columns and key of what flows from sources to sinks, as plain data.

A leaf module: the plugin registry registers the built-in datasets from here, and ``etl.datasets`` (which
looks datasets up in the registry) re-exports them, so neither imports the other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass

# Column kinds: "str" Utf8, "ts" Datetime(ms, UTC), "f64" Float64, "i64" Int64.
Columns = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Dataset:
    """A dataset: its required columns in order, and the key a sink upserts on."""

    name: str
    columns: Columns
    key: tuple[str, ...]
    description: str = ""
    nullable: tuple[str, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def required_values(self) -> tuple[str, ...]:
        """Columns that must hold a value in every row."""
        return tuple(name for name in self.column_names if name not in self.nullable)

    @property
    def has_timeframe(self) -> bool:
        return "timeframe" in self.column_names

    @property
    def stream_key(self) -> tuple[str, ...]:
        """Key columns that name the stream (constant in one stream's batches); the rest vary within it."""
        return tuple(name for name in self.key if name in STREAM_COLUMNS)


# Columns the core sets from the stream itself, whatever the source returned.
STREAM_COLUMNS = ("source", "symbol", "timeframe")


_SOURCE_AND_SYMBOL: Columns = (("source", "str"), ("symbol", "str"))

BUILTIN_DATASETS = (
    Dataset(
        "ohlcv",
        (
            *_SOURCE_AND_SYMBOL,
            ("timeframe", "str"),
            ("ts", "ts"),
            ("open", "f64"),
            ("high", "f64"),
            ("low", "f64"),
            ("close", "f64"),
            ("volume", "f64"),
        ),
        ("source", "symbol", "timeframe", "ts"),
        "candles; ts is the bar start; volume is null where the source has no trades (mid-price candles)",
        nullable=("volume",),
    ),
    Dataset(
        "funding",
        (*_SOURCE_AND_SYMBOL, ("ts", "ts"), ("funding_rate", "f64")),
        ("source", "symbol", "ts"),
        "funding-rate settlements of perpetuals",
    ),
    Dataset(
        "open_interest",
        (*_SOURCE_AND_SYMBOL, ("ts", "ts"), ("open_interest", "f64")),
        ("source", "symbol", "ts"),
        "open interest of perpetuals, in contracts or base coin",
    ),
    Dataset(
        "trades",
        (*_SOURCE_AND_SYMBOL, ("ts", "ts"), ("trade_id", "str"), ("price", "f64"), ("size", "f64"), ("side", "str")),
        ("source", "symbol", "trade_id"),
        "individual trades",
    ),
    Dataset(
        "liquidations",
        (*_SOURCE_AND_SYMBOL, ("ts", "ts"), ("side", "str"), ("price", "f64"), ("size", "f64")),
        ("source", "symbol", "ts", "side", "price", "size"),
        "forced liquidation orders, from websockets only (no venue serves their history)",
    ),
    Dataset(
        "positioning",
        (
            *_SOURCE_AND_SYMBOL,
            ("timeframe", "str"),
            ("ts", "ts"),
            ("long_short_ratio", "f64"),
            ("long_account", "f64"),
            ("short_account", "f64"),
        ),
        ("source", "symbol", "timeframe", "ts"),
        "long/short account ratios of perpetuals per period; extras carry top-trader ratios and taker volumes",
    ),
)
