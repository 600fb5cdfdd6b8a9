"""The ``validate`` transform: rows that break a check go to the quarantine with the reason, or fail the stream.

Checks (each applies where the dataset has the columns it needs):

- ``not_null``: no column the dataset requires a value in (key, prices, sizes) is null; a nullable
  one (ohlcv ``volume``: mid-price candles have none) may be
- ``finite``: no required float column is NaN or infinite
- ``positive_prices``: OHLC prices (ohlcv) and trade prices are above zero
- ``non_negative``: volumes, trade sizes, open interest and their extras are zero or more
- ``ohlc_consistent``: high >= max(open, close), low <= min(open, close), high >= low
- ``aligned``: ``ts`` is the start of a bar of the row's timeframe (UTC; weeks start on Monday)
- ``not_future``: ``ts`` is not after now

A row's ``reason`` lists every check it failed. Bad rows are removed from the batch, warm-up rows
included (so later transforms never see them), but only the batch's new rows are quarantined or
reported: the warm-up rows were dealt with by the run that loaded them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import etl
from etl.timeframes import MONTHS, TIMEFRAMES, floor_expr

from .frames import bar_origin, varying

_PRICE_COLUMNS = {"ohlcv": ("open", "high", "low", "close"), "trades": ("price",)}
_NON_NEGATIVE_COLUMNS = (
    "volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume", "trades", "size",
    "open_interest", "open_interest_value",
)


def _not_null(dataset: etl.Dataset, frame: Any) -> Any:
    import polars as pl

    return pl.any_horizontal(pl.col(name).is_null() for name in dataset.required_values)


def _finite(dataset: etl.Dataset, frame: Any) -> Any:
    import polars as pl

    floats = [name for name, kind in dataset.columns if kind == "f64"]
    return pl.any_horizontal(~pl.col(name).is_finite() for name in floats) if floats else None


def _positive_prices(dataset: etl.Dataset, frame: Any) -> Any:
    import polars as pl

    prices = _PRICE_COLUMNS.get(dataset.name)
    return pl.any_horizontal(pl.col(name) <= 0 for name in prices) if prices else None


def _non_negative(dataset: etl.Dataset, frame: Any) -> Any:
    import polars as pl

    schema = frame.schema
    present = [name for name in _NON_NEGATIVE_COLUMNS if name in schema and schema[name].is_numeric()]
    return pl.any_horizontal(pl.col(name) < 0 for name in present) if present else None


def _ohlc_consistent(dataset: etl.Dataset, frame: Any) -> Any:
    import polars as pl

    if dataset.name != "ohlcv":
        return None
    high, low = pl.col("high"), pl.col("low")
    body_top = pl.max_horizontal("open", "close")
    body_bottom = pl.min_horizontal("open", "close")
    return (high < body_top) | (low > body_bottom) | (high < low)


def _aligned(dataset: etl.Dataset, frame: Any) -> Any:
    """Misaligned when ``ts`` minus the timeframe's origin (Monday for weeks) is not a whole number of bars.

    A batch normally holds one timeframe, checked with plain integers; several are looked up per row.
    """
    import polars as pl

    if not dataset.has_timeframe:
        return None
    ms = pl.col("ts").dt.epoch("ms")
    if not varying(frame, ["timeframe"]):
        only = frame["timeframe"][0] if frame.height else None
        if only not in TIMEFRAMES:
            return pl.lit(True)
        return floor_expr(ms, only) != ms
    fixed = {name: length for name, length in TIMEFRAMES.items() if name not in MONTHS}
    step = pl.col("timeframe").replace_strict(fixed, default=None, return_dtype=pl.Int64)
    origin = pl.col("timeframe").replace_strict({name: bar_origin(name) for name in fixed}, default=None,
                                                return_dtype=pl.Int64)
    misaligned = (ms - origin) % step != 0
    for name in MONTHS:
        misaligned = pl.when(pl.col("timeframe") == name).then(floor_expr(ms, name) != ms).otherwise(misaligned)
    return misaligned.fill_null(True)


def _not_future(dataset: etl.Dataset, frame: Any) -> Any:
    """Compared in epoch ms: a datetime literal costs polars a third of a millisecond to build."""
    import polars as pl

    from etl.timeframes import now_ms

    return pl.col("ts").dt.epoch("ms") > now_ms()


CHECKS: dict[str, Callable[[etl.Dataset, Any], Any]] = {
    "not_null": _not_null,
    "finite": _finite,
    "positive_prices": _positive_prices,
    "non_negative": _non_negative,
    "ohlc_consistent": _ohlc_consistent,
    "aligned": _aligned,
    "not_future": _not_future,
}


def _check_checks(value: list[str] | None) -> None:
    if value == []:
        raise ValueError("name at least one check, or leave 'checks' out to run every check that applies")


class ValidateTransform(etl.Transform):
    name = "validate"
    options = {
        "checks": etl.Option(list, None, item_type=str, choices=tuple(CHECKS), check=_check_checks,
                             help="checks to run; default: every check that applies to the dataset"),
        "on_error": etl.Option(str, "quarantine", choices=("quarantine", "fail"),
                               help="quarantine: set bad rows aside and go on; fail: stop the stream"),
    }

    def apply(self, frame: Any, batch: etl.BatchContext) -> Any:
        """One pass flags bad rows, check by check; reasons are worked out on the (few) flagged rows only."""
        import polars as pl

        if not frame.height:
            return frame
        checks = self._checks(batch.stream, frame)
        flags = frame.with_columns(expression.alias(name) for name, expression in checks.items()).select(list(checks))
        bad = flags.select(pl.any_horizontal(pl.all()).fill_null(False)).to_series()
        if not bad.any():
            return frame
        reason = pl.concat_str([pl.when(pl.col(name)).then(pl.lit(name)) for name in checks], separator=", ",
                               ignore_nulls=True)
        rejected = frame.filter(bad).with_columns(flags.filter(bad).select(reason.alias("reason")).to_series())
        if self.settings["on_error"] == "fail":
            new_rejected = batch.new_rows(rejected)
            if new_rejected.height:
                raise etl.PermanentError(_describe_failure(new_rejected, batch.stream))
        batch.quarantine(rejected, self.name)
        return frame.filter(~bad)

    def _checks(self, stream: etl.Stream, frame: Any) -> dict[str, Any]:
        """The bad-row expression of every selected check; an error for a chosen check that cannot apply."""
        from etl.datasets import dataset

        built = {name: build(dataset(stream.dataset), frame) for name, build in CHECKS.items()}
        chosen = self.settings["checks"]
        if chosen is None:
            return {name: expression for name, expression in built.items() if expression is not None}
        for name in chosen:
            if built[name] is None:
                usable = ", ".join(name for name, expression in built.items() if expression is not None)
                raise etl.PermanentError(
                    f"validate: check {name!r} does not apply to {stream.dataset} data ({stream.label}); "
                    f"checks for {stream.dataset}: {usable}"
                )
        return {name: built[name] for name in chosen}


def _describe_failure(bad: Any, stream: etl.Stream) -> str:
    row = bad.row(0, named=True)
    values = ", ".join(f"{name}={value}" for name, value in row.items()
                       if name not in ("source", "symbol", "timeframe", "ts", "reason"))
    return (
        f"validate: {bad.height} bad row(s) in {stream.label}; the first, at {row['ts']:%Y-%m-%dT%H:%M:%SZ}, "
        f"failed {row['reason']} ({values}); on_error = 'quarantine' would set such rows aside instead"
    )
