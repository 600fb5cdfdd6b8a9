"""docs/plugins.md documents the whole plugin API: a hook, a base-class method or a conformance check
added without its entry in the reference fails here, and the files the tutorial quotes stay identical
to the example plugin's."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import etl
import etl.http
from etl import hookspecs
from etl.ratelimit import RateLimiter
from etl.testing import SinkConformance, SourceConformance, TransformConformance
from etl.testing import pytest_plugin as kit_fixtures

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()
BASE_CLASSES = (etl.Source, etl.Transform, etl.Sink, etl.BatchContext)
PLAIN_VALUES = (etl.Stream, etl.SourceConfig, etl.PluginContext, etl.Dataset, etl.Option)
SUITES = (SourceConformance, SinkConformance, TransformConformance)


def public_members(cls: type) -> set[str]:
    """Attributes, properties and methods a plugin author sees on ``cls`` (not inherited from object)."""
    names = {name for name in vars(cls) if not name.startswith("_")}
    names |= {name for name in getattr(cls, "__annotations__", {}) if not name.startswith("_")}
    if "__init__" in vars(cls) and not dataclasses.is_dataclass(cls):
        names |= set(re.findall(r"self\.([a-z]\w*) =", inspect.getsource(cls.__init__)))
    return names


def hooks() -> list[str]:
    return [name for name, function in vars(hookspecs).items() if hasattr(function, "etl_spec")]


def test_the_hooks_are_found():
    assert set(hooks()) == {"register_sources", "register_transforms", "register_sinks", "register_datasets"}


@pytest.mark.parametrize("hook", hooks())
def test_every_hook_has_a_reference_entry(hook):
    assert f"#### `{hook}(register)`" in GUIDE


@pytest.mark.parametrize("cls", BASE_CLASSES, ids=lambda cls: cls.__name__)
def test_every_public_base_class_member_is_documented(cls):
    missing = sorted(name for name in public_members(cls) if f"`{cls.__name__}.{name}" not in GUIDE)
    assert not missing, f"docs/plugins.md has no entry for {', '.join(f'{cls.__name__}.{m}' for m in missing)}"
    assert f"#### `{cls.__name__}(" in GUIDE or f"`etl.{cls.__name__}" in GUIDE, f"{cls.__name__} constructor"


@pytest.mark.parametrize("cls", PLAIN_VALUES, ids=lambda cls: cls.__name__)
def test_every_field_of_the_plain_values_is_documented(cls):
    entry = re.search(rf"^- `etl\.{cls.__name__}.*?(?=^- |^#)", GUIDE, re.M | re.S)
    assert entry, f"docs/plugins.md has no '- `etl.{cls.__name__}...' entry"
    fields = {field.name for field in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    missing = sorted(name for name in fields | public_members(cls) if name not in entry.group(0))
    assert not missing, f"the etl.{cls.__name__} entry does not mention {', '.join(missing)}"


def test_every_name_of_the_public_api_is_documented():
    missing = [name for name in etl.__all__ if f"etl.{name}" not in GUIDE and f"`{name}" not in GUIDE]
    assert not missing


def test_the_http_helper_is_documented_as_public_api():
    missing = [name for name in etl.http.__all__ if f"`{name}" not in GUIDE]
    for cls in (etl.http.HttpClient, RateLimiter):
        methods = [name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")]
        missing += [f"{cls.__name__}.{name}" for name in methods if f"`{cls.__name__}.{name}(" not in GUIDE]
    assert not missing


def test_the_kit_fixtures_are_documented():
    fixtures = [name for name, value in vars(kit_fixtures).items()
                if not name.startswith("_") and type(value).__name__ == "FixtureFunctionDefinition"]
    assert set(fixtures) == {"fake_server", "run_pipeline"}
    assert all(f"#### `{name}` fixture" in GUIDE for name in fixtures)


@pytest.mark.parametrize("suite", SUITES, ids=lambda suite: suite.__name__)
def test_every_conformance_check_and_setting_is_documented(suite):
    names = {name for cls in suite.__mro__ if cls.__module__.startswith("etl.testing")
             for name, value in vars(cls).items()
             if name.startswith("test_") or (not name.startswith("_") and not callable(value)
                                             and not isinstance(value, property))}
    names |= {"plugin", "read_rows"} if suite is SinkConformance else {"plugin"}
    names -= {"kind", "base_class"}
    missing = sorted(name for name in names if f"`{name}`" not in GUIDE and f"`{name}(" not in GUIDE)
    assert not missing, f"docs/plugins.md does not mention {suite.__name__}'s {', '.join(missing)}"


def quoted_files() -> list[tuple[str, str]]:
    return re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)\n```\n", GUIDE, re.S)


def test_the_tutorial_quotes_whole_files():
    assert {path for path, _ in quoted_files()} >= {
        "examples/etl-example-source/pyproject.toml",
        "examples/etl-example-source/etl_fear_greed/source.py",
        "examples/etl-example-source/etl_fear_greed/__init__.py",
        "examples/etl-example-source/tests/test_conformance.py",
    }


@pytest.mark.parametrize(("path", "quoted"), quoted_files(), ids=[path for path, _ in quoted_files()])
def test_quoted_files_are_identical_to_the_example(path, quoted):
    assert quoted == (ROOT / path).read_text().rstrip("\n"), f"docs/plugins.md quotes an outdated {path}"
