"""Plugin discovery: entry points of group ``etl``, loaded once on first use, each one guarded.

Built-ins ship as their own packages registered through the same entry-point group, so they go through
exactly the path a third-party plugin does. A plugin that fails to import or register is recorded and
reported; the others keep working. Two plugins claiming one name make that name unusable, loudly.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import ConfigError

KINDS = ("source", "transform", "sink", "dataset")
CORE_DISTRIBUTION = "market-etl"
_HOOKS = {
    "source": "register_sources",
    "transform": "register_transforms",
    "sink": "register_sinks",
    "dataset": "register_datasets",
}


@dataclass
class Registration:
    kind: str
    name: str
    obj: Any
    plugin: str
    package: str
    version: str


@dataclass
class PluginInfo:
    """One entry point: what it registered, or why it could not."""

    name: str
    package: str
    version: str
    registered: list[Registration] = field(default_factory=list)
    error: str | None = None

    @property
    def kinds(self) -> list[str]:
        return sorted({registration.kind for registration in self.registered})


@dataclass
class Registry:
    plugins: list[PluginInfo] = field(default_factory=list)
    entries: dict[str, dict[str, Registration]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    conflicts: dict[tuple[str, str], list[Registration]] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted(set(self.entries[kind]) | {name for k, name in self.conflicts if k == kind})

    def get(self, kind: str, name: str, where: str = "") -> Any:
        """The registered class (or dataset) of ``kind`` called ``name``; ConfigError if none or ambiguous."""
        if (kind, name) in self.conflicts:
            packages = " and ".join(f"{r.package} ({r.plugin})" for r in self.conflicts[kind, name])
            raise ConfigError(f"{kind.capitalize()} {name!r}{_at(where)} is registered by both {packages}; "
                              f"uninstall one or limit plugins with ETL_LOAD_PLUGINS")
        try:
            return self.entries[kind][name].obj
        except KeyError:
            installed = ", ".join(self.names(kind)) or "none"
            raise ConfigError(f"Unknown {kind} {name!r}{_at(where)}; installed {kind}s: {installed}") from None

    def _add(self, registration: Registration) -> None:
        kind, name = registration.kind, registration.name
        key = (kind, name)
        if key in self.conflicts:
            self.conflicts[key].append(registration)
            return
        existing = self.entries[kind].get(name)
        if existing is None:
            self.entries[kind][name] = registration
            return
        del self.entries[kind][name]
        self.conflicts[key] = [existing, registration]


def _at(where: str) -> str:
    return f" in {where}" if where else ""


_registry: Registry | None = None
_lock = threading.Lock()


def registry() -> Registry:
    """The process-wide registry, built on first call."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = _build()
        return _registry


def reset() -> None:
    """Forget the registry so the next call rediscovers entry points (tests, long-lived hosts)."""
    global _registry
    with _lock:
        _registry = None


def _allowed(entry_point: metadata.EntryPoint, package: str) -> bool:
    if package == CORE_DISTRIBUTION:
        return True
    setting = os.environ.get("ETL_LOAD_PLUGINS")
    if setting is None:
        return True
    wanted = {item.strip() for item in setting.split(",") if item.strip()}
    return entry_point.name in wanted or package in wanted


def _build() -> Registry:
    from .log import get_logger

    log = get_logger("etl.plugins")
    manager = pluggy.PluginManager("etl")
    manager.add_hookspecs(hookspecs)
    result = Registry()
    _register_core_datasets(result)
    entry_points = sorted(
        metadata.entry_points(group="etl"),
        key=lambda ep: (_package(ep)[0] != CORE_DISTRIBUTION, ep.name),
    )
    for entry_point in entry_points:
        package, version = _package(entry_point)
        if not _allowed(entry_point, package):
            continue
        info = PluginInfo(entry_point.name, package, version)
        result.plugins.append(info)
        try:
            module = entry_point.load()
            manager.register(module, name=entry_point.name)
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}"
            log.error("plugin failed to load", plugin=entry_point.name, package=package, error=info.error)
            continue
        _call_hooks(manager, module, info, result, log)
    for (kind, name), registrations in result.conflicts.items():
        packages = " and ".join(f"{r.package} ({r.plugin})" for r in registrations)
        log.error("duplicate plugin name refused", kind=kind, name=name, packages=packages)
    return result


def _package(entry_point: metadata.EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    return (dist.name, dist.version) if dist is not None else ("unknown", "")


def _register_core_datasets(result: Registry) -> None:
    """The core's own datasets, listed as what plugin ``etl`` registered so ``etl plugins`` shows them too."""
    from .schemas import BUILTIN_DATASETS

    info = PluginInfo("etl", CORE_DISTRIBUTION, _core_version())
    result.plugins.append(info)
    for dataset in BUILTIN_DATASETS:
        registration = Registration("dataset", dataset.name, dataset, info.name, info.package, info.version)
        info.registered.append(registration)
        result._add(registration)


def _core_version() -> str:
    try:
        return metadata.version(CORE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return ""


def _call_hooks(manager: pluggy.PluginManager, module: Any, info: PluginInfo, result: Registry, log: Any) -> None:
    """Call each hook of one plugin on its own, so one plugin's failure stays its own."""
    for kind, hook_name in _HOOKS.items():
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin is not module:
                continue

            def register(obj: Any, kind: str = kind) -> None:
                name = obj.name
                registration = Registration(kind, name, obj, info.name, info.package, info.version)
                info.registered.append(registration)
                result._add(registration)

            try:
                impl.function(register=register)
            except Exception as exc:
                info.error = f"{type(exc).__name__} in {hook_name}: {exc}"
                log.error("plugin failed to register", plugin=info.name, package=info.package, error=info.error)
