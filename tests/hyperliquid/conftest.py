"""Fixtures for the Hyperliquid sources: the fake /info and moto's S3 server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hyperliquid_helpers import DAY0, MISSING_HOUR, UNUSUAL_HOUR, Archive, archive_objects

from etl.timeframes import DAY
from fixtures.fake_hyperliquid import FakeHyperliquid
from fixtures.fake_hyperliquid_archive import asset_ctx_rows, asset_ctxs_key, compress, seed_bucket
from fixtures.s3_server import S3Server, fake_credentials, start_s3_server


@pytest.fixture
def fake_hl() -> Iterator[FakeHyperliquid]:
    with FakeHyperliquid() as fake:
        yield fake


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for the AWS chain that can only reach the local moto server."""
    for name, value in fake_credentials().items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def archive_day(s3: S3Server) -> Archive:
    """2023-06-01 for ETH (hour 5 missing) and BTC (hour 7 with unusual lines), plus hour 0 of the next day
    (its first snapshot belongs to the 1st), and asset contexts for June 1st and 3rd (the 2nd missing)."""
    lines = archive_objects(("ETH", "BTC"), range(25), MISSING_HOUR, UNUSUAL_HOUR)
    for day in (DAY0, DAY0 + 2 * DAY):
        lines[asset_ctxs_key(day)] = asset_ctx_rows(day, ["BTC", "ETH"])
    seed_bucket(s3.client(), "hl-day", {key: compress(value) for key, value in lines.items()})
    return Archive("hl-day", lines)


@pytest.fixture
def archive_source(s3: S3Server, archive_day: Archive, aws: None, tmp_path: Path) -> dict[str, Any]:
    """Source settings reading the seeded day through moto, with a cache of this test's own."""
    return {"plugin": "hyperliquid_archive", "bucket": archive_day.bucket, "endpoint_url": s3.url,
            "cache_dir": str(tmp_path / "cache")}
