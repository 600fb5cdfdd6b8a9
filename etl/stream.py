"""The name of one series a source delivers.

A leaf module (it imports nothing of the package) so that datasets, reports and gap detection can name a
stream without importing ``etl.base``, which itself reaches for them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Stream:
    """One series a source delivers: a dataset for a symbol, at a timeframe when the dataset has one."""

    dataset: str
    symbol: str
    timeframe: str | None = None

    @property
    def label(self) -> str:
        """The stream's name in checkpoints, logs and messages: ``ohlcv/BTCUSDT/1h``."""
        return "/".join(part for part in (self.dataset, self.symbol, self.timeframe) if part)

    @classmethod
    def from_label(cls, label: str) -> Stream:
        dataset, symbol, *rest = label.split("/", 2)
        return cls(dataset, symbol, rest[0] if rest else None)
