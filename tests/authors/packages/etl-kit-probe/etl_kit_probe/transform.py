"""The probe transform: adds a simple moving average of ``close`` over ``window`` rows."""

from __future__ import annotations

from typing import Any

import etl

TRANSFORM_DEFECTS = ("none", "no_warmup", "drops_column", "retypes", "drops_rows")


class ProbeSma(etl.Transform):
    name = "probe_sma"
    datasets = ("ohlcv",)
    options = {
        "window": etl.Option(int, 5, help="rows in the average"),
        "defect": etl.Option(str, "none", choices=TRANSFORM_DEFECTS, help="the contract to break"),
    }

    def warmup(self, stream: etl.Stream) -> int:
        return 0 if self.settings["defect"] == "no_warmup" else self.settings["window"] - 1

    def apply(self, frame: Any, batch: etl.BatchContext) -> Any:
        import polars as pl

        window = self.settings["window"]
        out = frame.with_columns(pl.col("close").rolling_mean(window, min_samples=window).alias("sma"))
        defect = self.settings["defect"]
        if defect == "drops_column":
            return out.drop("volume")
        if defect == "retypes":
            return out.with_columns(pl.col("volume").cast(pl.Float32))
        if defect == "drops_rows":
            return out.slice(1)
        return out
