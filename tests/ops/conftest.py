"""The fakes and the plugin packages the operations tests use, shared with other suites (the PostgreSQL server
is the session's, from tests/conftest.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

from etl import plugins
from tests.exchanges.conftest import binance, fast
from tests.yahoo.conftest import fake_yahoo, yahoo_pipeline

__all__ = ["binance", "fake_yahoo", "fast", "yahoo_pipeline"]
PROBE = Path(__file__).resolve().parents[1] / "authors" / "packages" / "etl-kit-probe"


@pytest.fixture(scope="session")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kit's probe package (its ``probe`` sink implements none of the optional methods), pip-installed
    into a folder of its own."""
    site = tmp_path_factory.mktemp("probe-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(PROBE)], check=True, capture_output=True, text=True)
    return site


@pytest.fixture
def probe_sink(probe_site: Path, monkeypatch: pytest.MonkeyPatch):
    """The ``probe`` sink registered in this process for one test."""
    monkeypatch.syspath_prepend(str(probe_site))
    plugins.reset()
    yield
    plugins.reset()
