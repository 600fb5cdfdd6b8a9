"""The local alternative.me every test talks to (``fake_server`` comes from market-etl's pytest plugin)."""

import pytest
from fake_alternative_me import handle


@pytest.fixture
def alternative_me(fake_server):
    return fake_server(handle)
