"""The ``features`` transform: adds indicator columns that match TA-Lib, computed in polars.

Columns are added, never removed. Rows without enough history hold null. The transform declares its
warm-up (see ``catalog``) so a run that starts from a checkpoint computes the same values as one run
over the whole history.

Features are built in two passes: the first computes helper columns that several features share
(the close's SMA for ``sma_20`` and the three Bollinger bands, the one-bar log return for every
volatility, the true range for ATR), the second the features themselves from them. Evaluating shared
parts once, and building the expressions once per transform, keeps a 20,000-row batch at a few
milliseconds. NaN or infinite inputs are read as null, so no feature is ever NaN.

A batch from the runner is one stream. A frame holding several streams (several symbols, say) is
computed per stream, with the same results; it is only slower.
"""

from __future__ import annotations

import operator
from typing import Any

import etl

from . import catalog
from .frames import against_previous, varying


def _check_include(value: list[str] | None) -> None:
    catalog.parse_include(value)


def _check_deviations(value: float) -> None:
    if value <= 0:
        raise ValueError("must be a positive number of standard deviations")


class FeaturesTransform(etl.Transform):
    name = "features"
    datasets = ("ohlcv", "funding", "open_interest", "positioning")
    options = {
        "include": etl.Option(
            list, None, item_type=str, check=_check_include,
            help="feature names such as rsi_14 or bb_upper_50; default: the dataset's standard set",
        ),
        "bb_deviations": etl.Option(float, 2.0, check=_check_deviations,
                                    help="standard deviations between the Bollinger middle and outer bands"),
    }

    def __init__(self, settings: dict[str, Any], context: etl.PluginContext):
        super().__init__(settings, context)
        self._built: dict[tuple, tuple[list, list]] = {}

    def features(self, dataset: str, numeric_columns: list[str] | tuple[str, ...]) -> list[catalog.Feature]:
        """What this transform adds for a dataset whose batches have ``numeric_columns``."""
        return catalog.parse_include(self.settings["include"]) or catalog.defaults(dataset, numeric_columns)

    def warmup(self, stream: etl.Stream) -> int:
        return max((feature.history for feature in self.features(stream.dataset, ())), default=0)

    def apply(self, frame: Any, batch: etl.BatchContext) -> Any:
        from etl.datasets import dataset

        numeric = [name for name, dtype in frame.schema.items() if dtype.is_numeric()]
        features = self.features(batch.stream.dataset, numeric)
        _check_applicable(features, batch.stream, numeric)
        if not frame.height:
            return frame.with_columns(_empty(feature) for feature in features)
        streams = tuple(varying(frame, [name for name in dataset(batch.stream.dataset).key if name != "ts"]))
        _check_one_row_per_ts(frame, batch.stream, streams)
        helpers, outputs = self._expressions(tuple(features), streams)
        inputs = _finite_inputs(frame, sorted({column for feature in features for column in feature.family.columns}))
        computed = frame.select(*streams, *inputs).with_columns(helpers).select(outputs)
        return frame.with_columns(computed.get_columns())

    def _expressions(self, features: tuple[catalog.Feature, ...], streams: tuple[str, ...]) -> tuple[list, list]:
        """Helper and output expressions, per stream when the batch holds several; built once per shape."""
        key = (features, streams)
        if key not in self._built:
            plan = _Plan(self.settings["bb_deviations"])
            outputs = [plan.build(feature) for feature in features]
            helpers = list(plan.helpers.values())
            if streams:
                helpers = [expression.over(streams) for expression in helpers]
                outputs = [expression.over(streams) for expression in outputs]
            self._built[key] = (helpers, outputs)
        return self._built[key]


def _check_applicable(features: list[catalog.Feature], stream: etl.Stream, numeric_columns: list[str]) -> None:
    for feature in features:
        if stream.dataset not in feature.family.datasets:
            raise etl.PermanentError(
                f"features: {feature.name} needs {' or '.join(feature.family.datasets)} data, but {stream.label} is "
                f"{stream.dataset}; features for {stream.dataset}: {', '.join(catalog.DEFAULTS[stream.dataset])}"
            )
        missing = [column for column in feature.family.columns if column not in numeric_columns]
        if missing:
            brought = [name for name, columns in catalog.ENRICH.items() if missing[0] in columns]
            hint = f"; the enrich transform brings it from {brought[0]}, before features" if brought else ""
            raise etl.PermanentError(f"features: {feature.name} needs a numeric column {missing[0]!r}, which "
                                     f"{stream.label} does not have (numeric columns: {', '.join(numeric_columns)})"
                                     f"{hint}")


def _finite_inputs(frame: Any, columns: list[str]) -> list[Any]:
    """The input columns, with NaN and infinite values as null: no feature can then come out NaN.

    A finite sum proves every value of a column finite (one NaN or infinity poisons it) at a tenth of
    the cost of testing each value; a sum that overflows on finite values merely takes the careful path.
    """
    import math

    import polars as pl

    floats = [name for name in columns if frame.schema[name].is_float()]
    if all(math.isfinite(frame[name].sum()) for name in floats):
        return [pl.col(name) for name in columns]
    return [pl.when(pl.col(name).is_finite()).then(pl.col(name)).alias(name) if name in floats else pl.col(name)
            for name in columns]


def _check_one_row_per_ts(frame: Any, stream: etl.Stream, streams: tuple[str, ...]) -> None:
    """Indicators count rows as bars: repeated or unordered timestamps would silently skew them."""
    from datetime import timedelta

    import polars as pl

    if streams:
        backwards = frame.select(pl.col("ts").diff().over(streams) <= timedelta(0)).to_series()
    else:
        backwards = against_previous(frame["ts"], operator.le)
    if backwards.any():
        ts = frame["ts"][backwards.arg_true()[0]]
        raise etl.PermanentError(
            f"features: {stream.label} has {backwards.sum()} row(s) repeating or preceding an earlier timestamp "
            f"(first at {ts:%Y-%m-%dT%H:%M:%SZ}); put the dedup transform before features"
        )


def _empty(feature: catalog.Feature) -> Any:
    import polars as pl

    return pl.lit(None, _dtype(feature)).alias(feature.name)


def _dtype(feature: catalog.Feature) -> Any:
    import polars as pl

    return pl.Int8 if feature.family.prefix in ("trend", "market_structure") else pl.Float64


class _Plan:
    """Collects the helper columns features share, and builds each feature's expression on them."""

    def __init__(self, bb_deviations: float):
        self.bb_deviations = bb_deviations
        self.helpers: dict[str, Any] = {}

    def helper(self, name: str, expression: Any) -> Any:
        import polars as pl

        column = f"__features_{name}"
        self.helpers.setdefault(column, expression.alias(column))
        return pl.col(column)

    def build(self, feature: catalog.Feature) -> Any:
        expression = self._expression(feature.family.prefix, feature.window or 0)
        return expression.cast(_dtype(feature)).alias(feature.name)

    def _expression(self, prefix: str, n: int) -> Any:
        import polars as pl

        from . import indicators as ta

        close, volume, taker = pl.col("close"), pl.col("volume"), pl.col("taker_buy_volume")
        open_interest = pl.col("open_interest")

        def close_sma() -> Any:
            return self.helper(f"sma_{n}", ta.sma(close, n))

        def band(sign: float) -> Any:
            variance = self.helper(f"variance_{n}", ta.bollinger_variance(close, n))
            return close_sma() + sign * self.bb_deviations * ta.bollinger_deviation(variance)

        def volume_sma() -> Any:
            return self.helper(f"volume_sma_{n}", ta.sma(volume, n))

        def log_returns() -> Any:
            return self.helper("log_return_1", ta.log_return(close, 1))

        builders = {
            "return": lambda: ta.simple_return(close, n),
            "log_return": lambda: log_returns() if n == 1 else ta.log_return(close, n),
            "volatility": lambda: ta.volatility(log_returns(), n),
            "atr": lambda: ta.atr(self.helper("true_range", ta.true_range(pl.col("high"), pl.col("low"), close)), n),
            "rsi": lambda: ta.rsi(self.helper(f"gain_{n}", ta.average_gain(close, n)),
                                  self.helper(f"loss_{n}", ta.average_loss(close, n))),
            "sma": close_sma,
            "ema": lambda: ta.ema(close, n),
            "bb_upper": lambda: band(1.0),
            "bb_middle": close_sma,
            "bb_lower": lambda: band(-1.0),
            "volume_sma": volume_sma,
            "volume_spike": lambda: ta.divide(volume, volume_sma()),
            "trend": lambda: ta.trend(close, n),
            "taker_buy_sell_delta": lambda: ta.taker_delta(volume, taker),
            "taker_buy_sell_ratio": lambda: ta.taker_ratio(volume, taker),
            "funding_rate_percentile": lambda: ta.percentile_rank(pl.col("funding_rate"), n),
            "open_interest_change": lambda: ta.change(open_interest, n),
            "open_interest_change_pct": lambda: ta.simple_return(open_interest, n),
            "liquidation_intensity": lambda: ta.divide(pl.col("liquidation_buy_size") + pl.col("liquidation_sell_size"),
                                                       volume),
            "long_short_ratio_change": lambda: ta.change(pl.col("long_short_ratio"), n),
            "long_short_ratio_zscore": lambda: ta.zscore(pl.col("long_short_ratio"), n),
            "market_structure": lambda: ta.market_structure(pl.col("high"), pl.col("low"), n),
        }
        return builders[prefix]()
