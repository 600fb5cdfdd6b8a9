"""What every conformance suite shares: finding the plugin, and proving its options are validated.

Options are checked through ``etl.config.load`` on a real TOML file, the path a user's typo takes, so a
suite proves the messages users will read: an unknown key, a wrong type or a missing required option is
an ``etl.ConfigError`` that names the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from etl.config import Project, load
from etl.errors import ConfigError
from etl.options import Option

from .pipelines import PipelineRun, run_cli, write_pipeline

UNKNOWN_OPTION = "conformance_unknown_option"
_WRONG_VALUES: dict[type, Any] = {
    str: 12345,
    int: "not a number",
    float: "not a number",
    bool: "yes",
    list: "not a list",
    dict: "not a table",
    Path: 12345,
}


def wrong_value(option: Option) -> Any:
    """A value of the wrong type for ``option`` (None for a type this suite cannot contradict)."""
    return _WRONG_VALUES.get(option.type)


class PluginSuite:
    """Base of the source, transform and sink suites.

    Subclasses name the plugin (``plugin = "coinbase"``) and may override the ``plugin_options``
    fixture. ``expected_failures`` maps a test name to the reason it is known to fail; those tests are
    marked xfail(strict=True), so fixing the plugin reminds you to drop the entry.
    """

    kind: ClassVar[str]
    base_class: ClassVar[type]
    plugin: ClassVar[str]
    expected_failures: ClassVar[dict[str, str]] = {}

    @pytest.fixture(autouse=True)
    def _conformance_expected_failures(self, request: pytest.FixtureRequest) -> None:
        reason = self.expected_failures.get(request.node.originalname)
        if reason:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        """The plugin's own options in a valid pipeline (override: paths, URLs, credentials)."""
        return {}

    @pytest.fixture
    def valid_options(self, plugin_options: dict[str, Any]) -> dict[str, Any]:
        return dict(plugin_options)

    def plugin_class(self) -> Any:
        from etl.plugins import registry

        return registry().get(self.kind, self.plugin)

    def declared_options(self) -> dict[str, Option]:
        """Every option the pipeline table of this plugin accepts, core ones included."""
        return dict(self.plugin_class().options)

    def pipeline(self, folder: Path, options: dict[str, Any], **variant: Any) -> dict[str, Any]:
        """A pipeline file (as a dict) using this plugin with ``options``; suites define their variants."""
        raise NotImplementedError

    def load(self, folder: Path, options: dict[str, Any], **variant: Any) -> Project:
        """Write the pipeline to ``folder`` and validate it the way ``etl`` does."""
        return load(write_pipeline(folder, self.pipeline(folder, options, **variant)))

    def write_inputs(self, folder: Path) -> None:
        """Write the local files the suite's pipeline reads, since ``etl validate`` checks they exist (none here)."""

    def validate(self, folder: Path, options: dict[str, Any]) -> PipelineRun:
        self.write_inputs(folder)
        return run_cli("validate", str(write_pipeline(folder, self.pipeline(folder, options))))

    def config_error(self, folder: Path, options: dict[str, Any], what: str) -> str:
        """The ConfigError message for ``options``; fails the test if the pipeline loads."""
        try:
            self.load(folder, options)
        except ConfigError as exc:
            return str(exc)
        pytest.fail(f"{self.kind} {self.plugin!r} accepted {what}; expected an etl.ConfigError naming the key")

    def test_plugin_is_registered(self) -> None:
        cls = self.plugin_class()
        assert isinstance(cls, type) and issubclass(cls, self.base_class), (
            f"{self.plugin!r} is registered as a {self.kind} but {cls!r} does not subclass "
            f"etl.{self.base_class.__name__}"
        )
        assert cls.name == self.plugin, f"{cls.__name__}.name is {cls.name!r}, registered as {self.plugin!r}"
        for name, option in cls.options.items():
            assert isinstance(option, Option), f"{cls.__name__}.options[{name!r}] must be an etl.Option, not {option!r}"

    def test_valid_pipeline_validates(self, tmp_path: Path, valid_options: dict[str, Any]) -> None:
        run = self.validate(tmp_path, valid_options)
        assert run.exit_code == 0, f"etl validate rejected the suite's valid pipeline:\n{run}"

    def test_unknown_option_is_a_config_error(self, tmp_path: Path, valid_options: dict[str, Any]) -> None:
        message = self.config_error(tmp_path, {**valid_options, UNKNOWN_OPTION: 1}, f"{UNKNOWN_OPTION} = 1")
        assert UNKNOWN_OPTION in message, f"the error does not name the unknown key: {message}"

    def test_wrong_option_type_is_a_config_error(self, tmp_path: Path, valid_options: dict[str, Any]) -> None:
        for name, option in self.declared_options().items():
            wrong = wrong_value(option)
            if wrong is None:
                continue
            message = self.config_error(tmp_path, {**valid_options, name: wrong}, f"{name} = {wrong!r}")
            assert name in message, f"the error for {name} = {wrong!r} does not name it: {message}"

    def test_missing_required_option_is_a_config_error(self, tmp_path: Path, valid_options: dict[str, Any]) -> None:
        required = [name for name, option in self.declared_options().items() if option.required]
        if not required:
            pytest.skip(f"{self.plugin} has no required option")
        for name in required:
            options = {key: value for key, value in valid_options.items() if key != name}
            message = self.config_error(tmp_path, options, f"a pipeline without {name!r}")
            assert name in message, f"the error for a missing {name!r} does not name it: {message}"
