"""The project's own transform conformance suite (``etl.testing.TransformConformance``) on each built-in."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from etl.testing import TransformConformance


class TestValidateConforms(TransformConformance):
    plugin = "validate"


class TestDedupConforms(TransformConformance):
    plugin = "dedup"


class TestFeaturesConform(TransformConformance):
    plugin = "features"
    rows: ClassVar[int] = 600


class TestFundingFeaturesConform(TransformConformance):
    plugin = "features"
    dataset: ClassVar[str] = "funding"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"include": ["funding_rate_percentile_30"]}


class TestResampleConforms(TransformConformance):
    plugin = "resample"
    preserves_rows: ClassVar[bool] = False

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"to": "4h"}
