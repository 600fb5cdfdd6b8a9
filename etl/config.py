"""The pipeline file: TOML in, validated specs out; every error names file, table and key."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .alerts import alert_settings
from .base import PluginContext, SourceConfig
from .errors import ConfigError
from .options import FromEnv, Option, check_known, mask_secrets, shown, validate_options
from .plugins import registry
from .selectors import Selector, parse_selector
from .symbol_map import load_symbol_map
from .timeframes import TIMEFRAMES, parse_duration, parse_time
from .tomlfile import read_toml

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
BASE_URL_OPTION = Option(str, None, "send every request of this source to this address (proxy, testnet, tests)")
LIVE_OPTIONS = {
    "ws_url": Option(str, None, "live sources: the websocket endpoint; default: base_url with ws://, or the venue's"),
    "ws_silence": Option(float, 60.0, "live sources: seconds without any frame before a connection is replaced"),
}
TABLE_OPTION = Option(str, None, "table name; default: the dataset name")
SETTINGS = {
    "state_dir": Option(Path, Path(".etl"), "checkpoints, locks, run ledger, quarantine"),
    "concurrency": Option(int, 4, "streams run at once per pipeline"),
    "batch_rows": Option(int, 100_000, "rows gathered from a source before transforms and sinks run"),
    "commit_rows": Option(int, 500_000, "rows of several streams written in one transaction per sink"),
    "commit_mb": Option(int, 32, "megabytes of batches written in one transaction per sink; with commit_rows, "
                        "whichever is reached first"),
    "cluster": Option(str, None, "a Dask scheduler (tcp://HOST:8786) or local:N to run units on; --cluster and "
                      "ETL_CLUSTER override it"),
    "chunk": Option(int, 50_000, "bars per unit of work of a backfill (rows for datasets without a timeframe): "
                    "one stream's history spreads over the workers of a cluster"),
    "rate_budget": Option(str, "worker", "on a cluster: each worker paces its requests by its own budget per host "
                          "(worker: each has its own egress IP), or all share one (cluster: one IP for all)",
                          choices=("worker", "cluster")),
    "sink_wait": Option(int, 180, "seconds a run waits for a sink file another process holds (a DuckDB file) "
                        "before it reports the pipeline locked; 0: do not wait"),
    "max_lag": Option(str, None, "how far behind a stream may fall before 'etl status --check' fails and an alert "
                      "goes out, e.g. 2h; default: three bars of the stream's timeframe (an hour without one)"),
    "recent_gaps": Option(str, "1d", "open gaps that ended within this span fail 'etl status --check'"),
    "alert": Option(dict, None, "{ command = \"...\", min_level = \"error\" }: run a command on failures, "
                    "staleness and lock contention"),
    "metrics": Option(Path, None, "a Prometheus textfile written after every run"),
}
_DURATIONS = ("max_lag", "recent_gaps")
_TUNING = ("concurrency", "batch_rows", "commit_rows", "commit_mb", "sink_wait", "chunk", "rate_budget")
# The least value of each tuning key: at least one of everything, but a run may decline to wait.
_LEAST = {"sink_wait": 0}
_PIPELINE_KEYS = {"source", "transforms", "sinks", "max_lag", *_TUNING}
_SOURCE_CORE_KEYS = {"plugin", "dataset", "symbols", "timeframes", "start", "end", "fallback", "symbol_map"}
# What a fallback table may not say: the window, the symbols and the dataset are the primary's.
_INHERITED_KEYS = _SOURCE_CORE_KEYS - {"plugin"}


@dataclass(frozen=True)
class PluginSpec:
    """A transform or sink table: which plugin, its validated settings, where it was written."""

    plugin: str
    settings: dict[str, Any]
    where: str


@dataclass(frozen=True)
class SinkSpec(PluginSpec):
    """A sink table: ``table`` is the core's key every sink accepts, kept apart from the plugin's settings."""

    table: str | None = None


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    source: SourceConfig
    transforms: tuple[PluginSpec, ...]
    sinks: tuple[SinkSpec, ...]
    concurrency: int
    batch_rows: int
    commit_rows: int
    commit_mb: int
    sink_wait: int
    chunk: int = 50_000
    max_lag: str | None = None  # the pipeline's, else [settings]'; None: three bars of each stream's timeframe
    rate_budget: str = "worker"


@dataclass(frozen=True)
class Project:
    path: Path
    state_dir: Path
    pipelines: dict[str, PipelineSpec]
    cluster: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # [settings], validated, defaults filled in

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def select(self, names: tuple[str, ...] | list[str]) -> list[PipelineSpec]:
        """The named pipelines in the order given, or all of them."""
        for name in names:
            if name not in self.pipelines:
                raise ConfigError(
                    f"{self.path}: no pipeline {name!r}; pipelines: {', '.join(self.pipelines) or 'none'}"
                )
        return [self.pipelines[name] for name in names] if names else list(self.pipelines.values())


def load(path: str | Path) -> Project:
    """Read and validate a pipeline file; raise ConfigError naming the file on any problem."""
    path = Path(path).absolute()
    raw = read_toml(path, str(path), "pipeline file")
    try:
        return _project(path, _substitute_env(raw, ""))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _substitute_env(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {key: _substitute_env(item, f"{where}.{key}" if where else key) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute_env(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, str) and _ENV.search(value):
        used: list[str] = []

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"Environment variable {name} used in {where} is not set")
            used.append(os.environ[name])
            return os.environ[name]

        substituted = FromEnv(_ENV.sub(replace, value))
        substituted.secrets = tuple(used)
        return substituted
    return value


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def _project(path: Path, raw: dict[str, Any]) -> Project:
    check_known(raw, ("settings", "pipelines"), "the top level")
    settings = validate_options(SETTINGS, _table(raw.get("settings", {}), "settings"), "settings", path.parent)
    for key in _DURATIONS:
        _duration(settings[key], f"settings.{key}")
    alert_settings(settings["alert"])
    pipelines_raw = _table(raw.get("pipelines", {}), "pipelines")
    if not pipelines_raw:
        raise ConfigError("No pipelines defined; add a [pipelines.NAME.source] table")
    pipelines = {
        name: _pipeline(name, _table(table, f"pipelines.{name}"), settings, path.parent)
        for name, table in pipelines_raw.items()
    }
    return Project(path, settings["state_dir"], pipelines, settings["cluster"], settings)


def _max_lag(raw: dict[str, Any], settings: dict[str, Any], where: str, base_dir: Path) -> str | None:
    """The pipeline's ``max_lag``, else the one of ``[settings]``."""
    if "max_lag" not in raw:
        return settings["max_lag"]
    value = validate_options({"max_lag": SETTINGS["max_lag"]}, {"max_lag": raw["max_lag"]}, where, base_dir)["max_lag"]
    _duration(value, f"{where}.max_lag")
    return value


def _duration(value: str | None, where: str) -> None:
    if value is not None:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"Invalid {where}: {exc}") from None


def _pipeline(name: str, raw: dict[str, Any], settings: dict[str, Any], base_dir: Path) -> PipelineSpec:
    where = f"pipelines.{name}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"Pipeline name {name!r} in {where} may only hold letters, digits, '_', '-' and '.'")
    check_known(raw, _PIPELINE_KEYS, where)
    if "source" not in raw:
        raise ConfigError(f"Missing [{where}.source] table")
    sinks = raw.get("sinks", [])
    if not sinks:
        raise ConfigError(f"Missing [[{where}.sinks]]: a pipeline needs at least one sink")
    local = validate_options(
        {key: SETTINGS[key] for key in _TUNING}, {key: raw[key] for key in _TUNING if key in raw}, where, base_dir
    )
    for key in _TUNING:
        if key not in raw:
            local[key] = settings[key]
        least = _LEAST.get(key, 1)
        if isinstance(local[key], int) and local[key] < least:
            raise ConfigError(f"Key {key!r} in {where} must be at least {least}, not {local[key]}")
    max_lag = _max_lag(raw, settings, where, base_dir)
    source = _source(_table(raw["source"], f"{where}.source"), f"{where}.source", base_dir, settings["state_dir"])
    transforms = tuple(
        _plugin_spec("transform", item, f"{where}.transforms[{index}]", base_dir)
        for index, item in enumerate(_list(raw.get("transforms", []), f"{where}.transforms"))
    )
    sink_specs = tuple(
        _sink_spec(item, f"{where}.sinks[{index}]", base_dir)
        for index, item in enumerate(_list(sinks, f"{where}.sinks"))
    )
    for spec in transforms:
        _check_transform_dataset(spec, source.dataset)
    context = PluginContext(name, base_dir, settings["state_dir"], sink_specs)
    for kind, specs in (("transform", transforms), ("sink", sink_specs)):
        for spec in specs:
            _check_plugin(kind, spec, context)
    return PipelineSpec(name, source, transforms, sink_specs, local["concurrency"], local["batch_rows"],
                        local["commit_rows"], local["commit_mb"], local["sink_wait"], local["chunk"], max_lag,
                        local["rate_budget"])


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be an array of tables ([[{where}]])")
    return value


def _plugin_name(raw: dict[str, Any], where: str) -> str:
    plugin = raw.get("plugin")
    if not isinstance(plugin, str):
        raise ConfigError(f"Missing key 'plugin' in {where}")
    return plugin


def _plugin_spec(kind: str, raw: Any, where: str, base_dir: Path, common: dict[str, Option] | None = None
                 ) -> PluginSpec:
    raw = _table(raw, where)
    plugin = _plugin_name(raw, where)
    cls = registry().get(kind, plugin, f"{where}.plugin")
    given = {key: value for key, value in raw.items() if key != "plugin"}
    settings = validate_options({**(common or {}), **cls.options}, given, where, base_dir)
    return PluginSpec(plugin, settings, where)


def _sink_spec(raw: Any, where: str, base_dir: Path) -> SinkSpec:
    """The sink's own settings, and the ``table`` every sink accepts taken out of them."""
    spec = _plugin_spec("sink", raw, where, base_dir, {"table": TABLE_OPTION})
    settings = dict(spec.settings)
    table = settings.pop("table")
    return SinkSpec(spec.plugin, settings, spec.where, table)


def _check_plugin(kind: str, spec: PluginSpec, context: PluginContext) -> None:
    """Run the plugin's own checks (no network, no writes) so ``etl run`` refuses what ``validate`` would."""
    cls = registry().get(kind, spec.plugin)
    try:
        cls(spec.settings, context).check()
    except ConfigError as exc:
        raise ConfigError(f"{mask_secrets(str(exc), cls.options, spec.settings)} ({spec.where})") from None


def _check_transform_dataset(spec: PluginSpec, dataset: str) -> None:
    cls = registry().get("transform", spec.plugin)
    if cls.datasets is not None and dataset not in cls.datasets:
        raise ConfigError(
            f"Transform {spec.plugin!r} in {spec.where} does not apply to dataset {dataset!r}; "
            f"it handles: {', '.join(cls.datasets)}"
        )


def _source(raw: dict[str, Any], where: str, base_dir: Path, state_dir: Path) -> SourceConfig:
    plugin = _plugin_name(raw, where)
    cls = registry().get("source", plugin, f"{where}.plugin")
    check_known(raw, _SOURCE_CORE_KEYS | set(_declared(cls)), where)
    dataset_name = raw.get("dataset", cls.datasets[0])
    _check_dataset(cls, dataset_name, where)
    selector = _selector(cls, raw.get("symbols"), f"{where}.symbols")
    symbols = () if selector else _strings(raw.get("symbols", []), f"{where}.symbols")
    if cls.requires_symbols and not symbols and not selector:
        raise ConfigError(f"Missing key 'symbols' in {where}: list the {plugin} symbols to load")
    if len(set(symbols)) != len(symbols):
        raise ConfigError(f"Duplicate symbol in {where}.symbols")
    timeframes = _strings(raw.get("timeframes", []), f"{where}.timeframes")
    if not _has_timeframe(dataset_name, where) and timeframes:
        raise ConfigError(f"Key 'timeframes' in {where} does not apply to dataset {dataset_name!r}")
    start = _time(raw.get("start"), f"{where}.start")
    end = _time(raw.get("end"), f"{where}.end")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"{where}.end ({raw['end']}) must be after {where}.start ({raw['start']})")
    symbol_map = load_symbol_map(raw.get("symbol_map"), f"{where}.symbol_map", base_dir, registry().names("source"))
    config = SourceConfig(plugin, dataset_name, symbols, timeframes, start, end, {}, base_dir, state_dir, selector,
                          symbol_map=symbol_map)
    config = _plugin_settings(cls, config, raw, where)
    fallbacks = tuple(_fallback(item, config, f"{where}.fallback[{index}]")
                      for index, item in enumerate(_list(raw.get("fallback", []), f"{where}.fallback")))
    return dataclasses.replace(config, fallbacks=fallbacks)


def _fallback(raw: Any, primary: SourceConfig, where: str) -> SourceConfig:
    """A fallback table: a plugin and its options; the dataset, symbols, timeframes and window are the primary's."""
    raw = _table(raw, where)
    plugin = _plugin_name(raw, where)
    cls = registry().get("source", plugin, f"{where}.plugin")
    inherited = sorted(_INHERITED_KEYS & set(raw))
    if inherited:
        raise ConfigError(f"Key {inherited[0]!r} in {where} is the primary source's: a fallback fetches the same "
                          f"streams and windows; give it only 'plugin' and its options")
    check_known(raw, {"plugin", *_declared(cls)}, where)
    _check_dataset(cls, primary.dataset, where)
    symbols = tuple(primary.symbol_for(symbol, plugin) for symbol in primary.symbols)  # as this plugin names them
    config = dataclasses.replace(primary, plugin=plugin, symbols=symbols, settings={}, fallbacks=())
    return _plugin_settings(cls, config, raw, where)


def _declared(cls: Any) -> dict[str, Option]:
    """Every option a source's table accepts: its own, ``base_url`` for network sources, the live ones."""
    return {**cls.options, **({"base_url": BASE_URL_OPTION} if cls.network else {}),
            **(LIVE_OPTIONS if cls.live else {})}


def _check_dataset(cls: Any, dataset_name: str, where: str) -> None:
    if dataset_name not in cls.datasets:
        raise ConfigError(
            f"Source {cls.name!r} does not offer dataset {dataset_name!r} ({where}.dataset); "
            f"it offers: {', '.join(cls.datasets)}"
        )


def _has_timeframe(dataset_name: str, where: str) -> bool:
    from .datasets import dataset as get_dataset

    return get_dataset(dataset_name, f"{where}.dataset").has_timeframe


def _plugin_settings(cls: Any, config: SourceConfig, raw: dict[str, Any], where: str) -> SourceConfig:
    """``config`` with the plugin's validated options, its timeframes checked, and the plugin's own ``check``."""
    if _has_timeframe(config.dataset, where):
        _check_timeframes(cls, config.timeframes, where)
    declared = _declared(cls)
    given = {key: value for key, value in raw.items() if key not in _SOURCE_CORE_KEYS}
    config = dataclasses.replace(config, settings=validate_options(declared, given, where, config.base_dir))
    try:
        cls(config).check()
    except ConfigError as exc:
        raise ConfigError(f"{mask_secrets(str(exc), declared, config.settings)} ({where})") from None
    return config


def _selector(cls: Any, value: Any, where: str) -> Selector | None:
    """A ``symbols`` table is a selector (``etl.selectors``), for a source that can list its venue's symbols."""
    if not isinstance(value, dict):
        return None
    if not cls.lists_symbols():
        able = sorted(name for name, entry in registry().entries["source"].items() if entry.obj.lists_symbols())
        raise ConfigError(f"Source {cls.name!r} cannot list its symbols, so {where} must be a list of symbols, "
                          f"not a selector; sources that can: {', '.join(able) or 'none installed'}")
    return parse_selector(value, where)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{where} must be a list of non-empty strings, not {shown(value)}")
    return tuple(value)


def _check_timeframes(cls: Any, timeframes: tuple[str, ...], where: str) -> None:
    offered = cls.timeframes or tuple(TIMEFRAMES)
    if not timeframes:
        raise ConfigError(f"Missing key 'timeframes' in {where}; {cls.name} offers: {', '.join(offered)}")
    for timeframe in timeframes:
        if timeframe not in offered:
            raise ConfigError(
                f"Invalid timeframe {timeframe!r} in {where}.timeframes; {cls.name} offers: {', '.join(offered)}"
            )


def _time(value: Any, where: str) -> int | None:
    if value is None:
        return None
    from datetime import UTC, date, datetime

    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be an ISO date or datetime, not {shown(value)}")
    try:
        return parse_time(value)
    except ValueError:
        raise ConfigError(
            f"Invalid date {shown(value)} in {where}; use an ISO date or datetime such as 2024-01-01 "
            f"or 2024-01-01T00:00:00Z"
        ) from None
