"""Files source: OHLCV (or any dataset) from CSV or Parquet files, such as vendor dumps or the monthly
kline CSVs exchanges publish.

``path`` is a file or glob, relative to the pipeline file, and may name ``{symbol}`` and ``{timeframe}``
so one pattern covers every stream. Files holding several symbols or timeframes are filtered by those
columns. ``columns`` maps dataset columns to the file's names; ``layout = "binance"`` reads Binance's
kline CSVs (with or without the header row of later files; open time in ms or, since 2025, in µs) without
any mapping (``etl_files.binance``, shared with the ``binance_archive`` source).

``layout = "freqtrade"`` reads freqtrade's data folder: ``path`` is ``user_data/data/<exchange>`` and the
symbols are freqtrade pairs, ``BTC/USDT`` (spot) or ``BTC/USDT:USDT`` (futures), found under the names freqtrade
gives their files (``BTC_USDT-1m.feather``, ``futures/BTC_USDT_USDT-1h-futures.feather``; ``etl_files.freqtrade``)
as feather, Parquet, JSON or gzipped JSON. The ``symbol`` stored is the pair as the pipeline writes it, the
core's rule for every source, so a freqtrade user's tables keep the names freqtrade shows. ``ohlcv`` reads
spot candles for a spot pair and futures candles for a futures pair (``candle_type = "mark"``, ``"index"`` or
``"premiumIndex"`` for the others), ``funding`` the ``-funding_rate`` files, ``trades`` the ``-trades`` files.

Every file is checked by its first bytes against the format its name promises (``detect_format``), at ``etl
validate`` and before each read: a CSV named ``.feather`` fails with the file and what it holds, not a parser's
garbled message.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import etl
from etl.errors import ConfigError, SourceError

from . import freqtrade
from .binance import epoch_ms, scan_klines

_EPOCH_UNITS = ("auto", "s", "ms", "us")
_READS = {"freqtrade": "feather, parquet, json and json.gz"}


class FilesSource(etl.Source):
    name = "files"
    datasets = ("ohlcv", "funding", "open_interest", "trades")
    options = {
        "path": etl.Option(str, help="file or glob; may contain {symbol} and {timeframe}"),
        "format": etl.Option(str, "auto", choices=("auto", "csv", "parquet")),
        "layout": etl.Option(str, "columns", choices=("columns", "binance", "freqtrade")),
        "candle_type": etl.Option(str, "auto", choices=freqtrade.CANDLE_TYPES,
                                  help="layout = 'freqtrade', ohlcv: which candles; auto: spot for BTC/USDT, "
                                  "futures for BTC/USDT:USDT"),
        "columns": etl.Option(dict, {}, help="dataset column -> column in the file"),
        "ts_unit": etl.Option(str, "auto", choices=_EPOCH_UNITS, help="unit of integer timestamps"),
        "ts_format": etl.Option(str, None, help="strptime format of text timestamps; default ISO-8601"),
        "extras": etl.Option(bool, True, help="keep the file's other columns as extra columns"),
        "batch_rows": etl.Option(int, 200_000, help="rows per batch handed to the pipeline"),
    }

    def check(self) -> None:
        for target, column in self.settings["columns"].items():
            if not isinstance(column, str):
                raise ConfigError(f"columns.{target} must name a column of the file, not {column!r}")
        layout = self.settings["layout"]
        if layout != "columns" and self.settings["columns"]:
            raise ConfigError(f"layout = {layout!r} fixes the columns; remove 'columns'")
        if layout == "freqtrade":
            freqtrade.check_dataset(self.config.dataset)
            if self.settings["format"] != "auto":
                raise ConfigError("layout = 'freqtrade' tells formats by suffix; remove 'format'")
            if self.settings["candle_type"] != "auto" and self.config.dataset != "ohlcv":
                raise ConfigError(f"candle_type chooses ohlcv candles; dataset {self.config.dataset!r} has its own "
                                  "files (remove candle_type)")
        elif self.settings["candle_type"] != "auto":
            raise ConfigError("candle_type applies to layout = 'freqtrade' only")

    def check_inputs(self) -> None:
        """Every stream has files, in a format this source reads.

        A ``.feather`` or zipped file would otherwise be parsed as CSV and fail at run time with a garbled message.
        """
        for stream in self.streams():
            try:
                files = self._files(stream)
            except SourceError as exc:
                raise ConfigError(str(exc)) from None
            for file in files:
                self._check_format(file)

    def _format(self, file: Path) -> str:
        """The format ``file`` is read as: the ``format`` option, or by its suffix."""
        kind = self.settings["format"]
        if self.settings["layout"] == "freqtrade":
            return freqtrade.format_of(file)
        if kind == "auto":
            kind = "parquet" if file.suffix.lower() in {".parquet", ".pq"} else "csv"
        return kind

    def _check_format(self, file: Path, error: type[Exception] = ConfigError) -> None:
        """``error`` naming the file and what it holds unless it is in the format it will be read as: at
        ``etl validate`` (ConfigError) and before each read of a run (SourceError, failing the stream)."""
        kind = self._format(file)
        detected = detect_format(file)
        if detected != kind:
            reads = _READS.get(self.settings["layout"], "csv and parquet")
            raise error(f"files: cannot read {file} as {kind}: detected format {detected}; "
                        f"the files source reads {reads}")

    def _files(self, stream: etl.Stream) -> list[Path]:
        if self.settings["layout"] == "freqtrade":
            return freqtrade.find(self._path(self.settings["path"]), stream, self.settings["candle_type"])
        pattern = self.settings["path"].format(symbol=stream.symbol, timeframe=stream.timeframe or "")
        path = self._path(pattern)
        files = sorted(Path(p) for p in glob.glob(str(path)))
        if not files:
            raise SourceError(f"files: no file matches {path} for {stream.label}")
        return files

    def _path(self, pattern: str) -> Path:
        path = Path(pattern).expanduser()
        return path if path.is_absolute() else self.config.base_dir / path

    def _scan(self, file: Path) -> Any:
        import polars as pl

        if self.settings["layout"] == "freqtrade":
            return freqtrade.scan(file, self.config.dataset)
        if self._format(file) == "parquet":
            return pl.scan_parquet(file)
        if self.settings["layout"] == "binance":
            return scan_klines(file)
        # The dataset's float columns are declared, so inference (most of a CSV's read time) only has to
        # guess the rest, and a price column whose first rows look like integers still reads as floats.
        mapping, schema = self.settings["columns"], etl.datasets.dataset(self.config.dataset)
        floats = {mapping.get(name, name): pl.Float64 for name, kind in schema.columns if kind == "f64"}
        return pl.scan_csv(file, try_parse_dates=False, infer_schema_length=1_000, schema_overrides=floats)

    def fetch(self, stream: etl.Stream, start: int, end: int) -> Iterator[Any]:
        import polars as pl

        from etl.timeframes import now_ms, ts_literal

        data = self._read(stream, pl.col("ts") >= ts_literal(start))
        now = now_ms()
        last = data.select(pl.col("ts").max().dt.epoch("ms")).item()
        if last is not None and last >= min(end, now):
            self.count(stream, "future_rows_dropped", data.select((pl.col("ts") > ts_literal(now)).sum()).item())
            data = data.filter(pl.col("ts") < ts_literal(end))
        size = self.settings["batch_rows"]
        for offset in range(0, data.height, size):
            yield data.slice(offset, size)

    def history(self, stream: etl.Stream, before: int, rows: int) -> Iterator[Any]:
        """The files are read whole anyway: the last ``rows`` rows before ``before`` come from one read."""
        import polars as pl

        from etl.timeframes import ts_literal

        yield self._read(stream, pl.col("ts") < ts_literal(before)).tail(rows)

    def _read(self, stream: etl.Stream, keep: Any) -> Any:
        """The stream's rows that ``keep`` selects, from every matching file, in time order."""
        import polars as pl

        frames = []
        for file in self._files(stream):
            self._check_format(file, SourceError)
            try:
                frames.append(self._normalise(self._scan(file), file, stream).filter(keep))
            except (pl.exceptions.PolarsError, OSError) as exc:
                raise SourceError(f"files: cannot read {file} for {stream.label}: {exc}") from None
        try:
            data = pl.concat(frames, how="diagonal_relaxed").collect()
        except pl.exceptions.PolarsError as exc:
            raise SourceError(f"files: cannot read {self.settings['path']} for {stream.label}: {exc}") from None
        # Files are usually in time order already (one per month, named by date): sorting and filtering every
        # column anyway cost as much as reading them.
        return data if data["ts"].is_sorted() else data.sort("ts", maintain_order=True)

    def _normalise(self, lazy: Any, file: Path, stream: etl.Stream) -> Any:
        import polars as pl

        names = lazy.collect_schema().names()
        if self.settings["layout"] == "columns":
            mapping = {source: target for target, source in self.settings["columns"].items()}
            unknown = [source for source in mapping if source not in names]
            if unknown:
                raise SourceError(f"files: {file} has no column {unknown[0]!r} (columns: {', '.join(names)})")
            lazy = lazy.rename(mapping)
        schema = lazy.collect_schema()
        if "ts" not in schema:
            raise SourceError(f"files: {file} has no 'ts' column; map it with columns = {{ ts = \"...\" }}")
        for column, value in (("symbol", stream.symbol), ("timeframe", stream.timeframe)):
            if column in schema and value is not None:
                lazy = lazy.filter(pl.col(column) == value)
        lazy = lazy.with_columns(self._ts(schema["ts"]))
        required = etl.datasets.dataset(stream.dataset).column_names
        if not self.settings["extras"]:
            lazy = lazy.select([c for c in lazy.collect_schema().names() if c in required])
        return lazy

    def _ts(self, dtype: Any) -> Any:
        import polars as pl

        ts = pl.col("ts")
        if dtype.is_integer() or dtype.is_float():
            ts = ts.cast(pl.Int64)
            unit = self.settings["ts_unit"]
            ms = epoch_ms(ts) if unit == "auto" else {"s": ts * 1000, "ms": ts, "us": ts // 1000}[unit]
            return pl.from_epoch(ms, time_unit="ms").dt.replace_time_zone("UTC").alias("ts")
        if dtype == pl.String:
            fmt = self.settings["ts_format"]
            parsed = ts.str.to_datetime(format=fmt, time_unit="ms", time_zone="UTC") if fmt else (
                ts.str.to_datetime(time_unit="ms", time_zone="UTC")
            )
            return parsed.alias("ts")
        return ts


_MAGIC = (
    (b"PAR1", "parquet"),
    (b"ARROW1", "feather (Arrow IPC)"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xff\xff\xff\xff", "Arrow IPC stream"),
)


def detect_format(file: Path) -> str:
    """What ``file`` holds, from its first bytes: a known binary format, ``json`` (or ``json.gz``) for text that
    opens a JSON array or object, ``csv`` for other text, else ``binary``."""
    try:
        with file.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise ConfigError(f"files: cannot read {file}: {exc.strerror}") from None
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return "json.gz" if name == "gzip" and _text_kind(_gunzip_head(head)) == "json" else name
    return "binary" if b"\0" in head else _text_kind(head)


def _text_kind(head: bytes) -> str:
    return "json" if head.lstrip()[:1] in (b"[", b"{") else "csv"


def _gunzip_head(head: bytes) -> bytes:
    """The first bytes a gzip stream unpacks to, from its first bytes; empty when they do not unpack."""
    import zlib

    try:
        return zlib.decompressobj(wbits=31).decompress(head, 64)
    except zlib.error:
        return b""


@etl.hookimpl
def register_sources(register):
    register(FilesSource)
