"""Market-data invariants, each a function that raises AssertionError naming the stream and the rows.

The conformance suites call these on what a plugin produced; plugin authors can call them in their own
tests too. Frames are in the dataset schema (after ``etl.datasets.conform``) unless a check says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.timeframes import floor_expr, from_ms, iso, next_expr

if TYPE_CHECKING:
    import polars as pl

    from etl.datasets import Dataset

SHOWN_ROWS = 3


def _rows(frame: pl.DataFrame, columns: list[str] | None = None) -> str:
    """A few offending rows, readable in a failure message."""
    shown = frame.select(columns) if columns else frame
    lines = [str(row) for row in shown.head(SHOWN_ROWS).iter_rows(named=True)]
    more = frame.height - SHOWN_ROWS
    return "\n  ".join(lines) + (f"\n  ... and {more} more" if more > 0 else "")


def _fail(label: str, message: str, rows: pl.DataFrame | None = None, columns: list[str] | None = None) -> None:
    detail = f":\n  {_rows(rows, columns)}" if rows is not None and rows.height else ""
    raise AssertionError(f"{label}: {message}{detail}")


def check_raw_ts(batch: pl.DataFrame, label: str) -> None:
    """A source's own ``ts``: epoch milliseconds, or a timezone-aware datetime (a naive one is ambiguous)."""
    import polars as pl

    if "ts" not in batch.columns:
        _fail(label, f"batch has no 'ts' column; columns: {', '.join(batch.columns)}")
    dtype = batch.schema["ts"]
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            _fail(label, f"'ts' is a naive datetime ({dtype}); make it UTC-aware or epoch milliseconds")
        return
    if not dtype.is_integer():
        _fail(label, f"'ts' must be epoch milliseconds (integer) or a UTC-aware datetime, not {dtype}")
    small = batch.filter(pl.col("ts").abs() < 100_000_000_000)
    if small.height:
        _fail(label, "integer 'ts' looks like epoch seconds, not milliseconds", small, ["ts"])


def check_schema(frame: pl.DataFrame, dataset: Dataset, label: str) -> None:
    """Required columns first, in order, with their types; never NaN; null only where the dataset allows."""
    import polars as pl

    from etl.datasets import polars_type

    required = list(dataset.column_names)
    if frame.columns[: len(required)] != required:
        _fail(label, f"columns must start with {required} in order; got {frame.columns}")
    for name, kind in dataset.columns:
        expected = polars_type(kind)
        if frame.schema[name] != expected:
            _fail(label, f"column {name!r} is {frame.schema[name]}, the {dataset.name} dataset wants {expected}")
        if kind == "f64":
            nan = frame.filter(pl.col(name).is_nan())
            if nan.height:
                _fail(label, f"column {name!r} holds NaN; a missing value is null", nan, required)
        if name in dataset.required_values:
            missing = frame.filter(pl.col(name).is_null())
            if missing.height:
                _fail(label, f"column {name!r} holds null", missing, required)


def check_ascending(frames: list[pl.DataFrame], label: str) -> None:
    """``ts`` never goes back, within a batch or from one batch to the next."""
    import polars as pl

    previous = None
    for number, frame in enumerate(frames, 1):
        if not frame.height:
            continue
        back = frame.filter(pl.col("ts") < pl.col("ts").shift(1))
        if back.height:
            _fail(label, f"'ts' goes back in time inside batch {number}", back, ["ts"])
        if previous is not None and frame["ts"][0] < previous:
            _fail(label, f"batch {number} starts at {frame['ts'][0]}, before the previous batch ended ({previous})")
        previous = frame["ts"][-1]


def check_key_unique(frame: pl.DataFrame, dataset: Dataset, label: str) -> None:
    """No two rows share the dataset's key."""
    import polars as pl

    key = list(dataset.key)
    duplicated = frame.filter(pl.struct(key).is_duplicated()).sort(key)
    if duplicated.height:
        _fail(label, f"{duplicated.height} rows share a key {tuple(key)}", duplicated, key)


def check_in_window(frame: pl.DataFrame, start: int, end: int, label: str) -> None:
    """Every row satisfies ``start <= ts < end``."""
    import polars as pl

    outside = frame.filter((pl.col("ts") < from_ms(start)) | (pl.col("ts") >= from_ms(end)))
    if outside.height:
        _fail(label, f"rows outside the window asked for [{iso(start)}, {iso(end)})", outside, ["ts"])


def check_closed(frame: pl.DataFrame, timeframe: str | None, now_ms: int, label: str) -> None:
    """No candle still forming at ``now_ms`` (its end is in the future); no row at all from the future."""
    import polars as pl

    ms = pl.col("ts").dt.epoch("ms")
    open_rows = frame.filter((next_expr(ms, timeframe) if timeframe else ms) > now_ms)
    if open_rows.height:
        what = "candles still forming" if timeframe else "rows timestamped in the future"
        _fail(label, f"{what} at {iso(now_ms)}", open_rows, ["ts"])


def check_on_grid(frame: pl.DataFrame, timeframe: str, label: str) -> None:
    """Each ``ts`` is the start of a ``timeframe`` interval (weeks start on Monday)."""
    import polars as pl

    ms = pl.col("ts").dt.epoch("ms")
    off = frame.filter(floor_expr(ms, timeframe) != ms)
    if off.height:
        _fail(label, f"'ts' is not the start of a {timeframe} interval", off, ["ts"])


def check_ohlc(frame: pl.DataFrame, label: str) -> None:
    """``low <= open, close <= high`` and ``volume >= 0`` on every candle."""
    import polars as pl

    broken = frame.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("volume") < 0)
    )
    if broken.height:
        _fail(label, "inconsistent candles (need low <= open, close <= high and volume >= 0)", broken,
              ["ts", "open", "high", "low", "close", "volume"])


def check_same_rows(actual: pl.DataFrame, expected: pl.DataFrame, key: list[str], label: str,
                    tolerance: float = 0.0) -> None:
    """The same rows (compared by key) with the same values, floats within a relative ``tolerance``."""
    from polars.testing import assert_frame_equal

    actual_keys = actual.select(key)
    expected_keys = expected.select(key)
    missing = expected_keys.join(actual_keys, on=key, how="anti", nulls_equal=True)
    if missing.height:
        _fail(label, f"{missing.height} expected rows are missing", missing)
    extra = actual_keys.join(expected_keys, on=key, how="anti", nulls_equal=True)
    if extra.height:
        _fail(label, f"{extra.height} rows that should not be there", extra)
    if actual.height != expected.height:
        _fail(label, f"{actual.height} rows instead of {expected.height} (duplicated keys)")
    if set(actual.columns) != set(expected.columns):
        _fail(label, f"columns {sorted(actual.columns)} instead of {sorted(expected.columns)}")
    ordered = actual.select(expected.columns).sort(key)
    try:
        assert_frame_equal(ordered, expected.sort(key), check_exact=tolerance == 0, rel_tol=tolerance or 1e-5,
                           abs_tol=tolerance)
    except AssertionError as exc:
        raise AssertionError(f"{label}: values differ: {exc}\n  {_rows(_differing(ordered, expected, key))}") from None


def check_same_values(actual: pl.DataFrame, expected: pl.DataFrame, label: str, relative: float = 1e-12) -> float:
    """The same timestamps in the same order, nulls in the same places, and every numeric value within
    ``relative`` of the expected one (relative, so a 1e-5 return is held to the same digits as a price).
    Returns the largest relative difference found: incremental runs checked against one run over everything."""
    import numpy as np
    import polars as pl

    if actual["ts"].to_list() != expected["ts"].to_list():
        _fail(label, f"{actual.height} rows instead of the {expected.height} expected, or other timestamps")
    worst = 0.0
    for name, dtype in expected.schema.items():
        if not dtype.is_numeric():
            continue
        a, b = actual[name], expected[name]
        nulls = a.is_null() != b.is_null()
        if nulls.any():
            _fail(label, f"{name}: {nulls.sum()} nulls differ", actual.filter(nulls), ["ts", name])
        a, b = a.drop_nulls().cast(pl.Float64).to_numpy(), b.drop_nulls().cast(pl.Float64).to_numpy()
        difference = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300), initial=0.0))
        if difference > relative:
            _fail(label, f"{name}: relative difference up to {difference:.3g} (allowed {relative:g})")
        worst = max(worst, difference)
    return worst


def _differing(actual: pl.DataFrame, expected: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Rows whose values are not identical, each column beside its ``*_expected`` twin."""
    import polars as pl

    values = [name for name in expected.columns if name not in key]
    joined = actual.join(expected, on=key, how="inner", suffix="_expected")
    changed = pl.any_horizontal(pl.col(name).ne_missing(pl.col(f"{name}_expected")) for name in values)
    return joined.filter(changed).select(*key, *(c for name in values for c in (name, f"{name}_expected")))


def align_types(actual: pl.DataFrame, expected: pl.DataFrame) -> pl.DataFrame:
    """Cast what a sink gave back to the dtypes of ``expected``, so stores that keep timestamps as text,
    epoch numbers or another time unit compare equal when they hold the same instants."""
    import polars as pl

    casts = []
    for name, dtype in expected.schema.items():
        if name not in actual.columns:
            continue
        if isinstance(dtype, pl.Datetime):
            casts.append(_to_utc_ms(actual.schema[name], name))
        elif actual.schema[name] != dtype:
            casts.append(pl.col(name).cast(dtype))
    return actual.with_columns(casts) if casts else actual


def _to_utc_ms(dtype: pl.DataType, name: str) -> pl.Expr:
    import polars as pl

    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        column = column.dt.replace_time_zone("UTC") if dtype.time_zone is None else column.dt.convert_time_zone("UTC")
        return column.dt.cast_time_unit("ms")
    if dtype == pl.String:
        return column.str.to_datetime(time_unit="ms", time_zone="UTC").alias(name)
    return column.cast(pl.Int64).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias(name)
