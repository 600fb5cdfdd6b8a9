"""The market-etl source conformance suite, on this plugin: a few lines, the whole contract."""

import pytest

from etl.testing import SourceConformance


class TestFearGreedConforms(SourceConformance):
    plugin = "fear_greed"
    symbols = ("crypto",)
    start, end = "2024-01-01", "2024-03-01"
    unknown_symbol = "stocks"

    @pytest.fixture
    def source_server(self, alternative_me):
        return alternative_me
