"""The requester-pays S3 bucket, behind a local cache of downloaded objects.

Every GET costs the requester transfer fees, so an object is downloaded once and kept: reruns, other
pipelines and other datasets built from the same hour read the cached copy without any request. A
download lands in a temporary file and joins the cache only after its reader has parsed it whole, so
a corrupt or truncated object never poisons the cache. Archive objects are immutable once published.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from etl.errors import PermanentError, TransientError
from etl.log import get_logger

log = get_logger("etl_hyperliquid")

_MISSING = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "ExpiredToken", "InvalidToken"}
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
              "ThrottlingException", "RequestTimeTooSkewed", "500", "502", "503", "504"}
CREDENTIALS_HINT = (
    "the bucket is requester-pays: AWS credentials are needed (environment variables, ~/.aws, SSO or an "
    "instance role) and their account is billed for the transfer"
)


class ArchiveStore:
    """One bucket: listings, and objects read through the cache at ``cache_dir/<bucket>/<key>``."""

    def __init__(self, bucket: str, cache_dir: Path, endpoint_url: str | None, region: str):
        self.bucket = bucket
        self.cache_root = cache_dir / bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self._client: Any = None
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def cached(self, key: str) -> Path | None:
        path = self.cache_root / key
        return path if path.is_file() else None

    def client(self) -> Any:
        """A boto3 S3 client from the usual credential chain; retries are ours (``retry_call``), not botocore's."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                    max_pool_connections=16,
                )
                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
                )
            return self._client

    def list(self, prefix: str, delimiter: str | None = None) -> tuple[dict[str, int], list[str]]:
        """Keys under ``prefix`` with their sizes, and (with a delimiter) the common prefixes."""
        sizes: dict[str, int] = {}
        prefixes: list[str] = []

        def once() -> None:
            sizes.clear()
            prefixes.clear()
            extra = {"Delimiter": delimiter} if delimiter else {}
            paginator = self.client().get_paginator("list_objects_v2")
            pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix, RequestPayer="requester", **extra)
            for page in pages:
                sizes.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
                prefixes.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))

        self._call(once, f"LIST {self.url(prefix)}")
        return sizes, prefixes

    @contextmanager
    def fetch(self, key: str) -> Iterator[Path | None]:
        """The object as a local file (None if the bucket has no such key), cached once the block succeeds.

        The caller parses the file inside the ``with`` block; if that raises, a fresh download is
        discarded instead of cached. Concurrent callers for one key wait for the first one's download.
        """
        if self.cached(key) is None:
            with self._key_lock(key):
                if self.cached(key) is None:
                    with self._downloaded(key) as path:
                        yield path
                    return
        yield self.cached(key)

    @contextmanager
    def _downloaded(self, key: str) -> Iterator[Path | None]:
        target = self.cache_root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
        temp = Path(name)
        try:
            found = self._call(lambda: self._download(key, temp), f"GET {self.url(key)}")
            yield temp if found else None
            if found:
                os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _download(self, key: str, temp: Path) -> bool:
        try:
            response = self.client().get_object(Bucket=self.bucket, Key=key, RequestPayer="requester")
        except Exception as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        size = 0
        with temp.open("wb") as handle:
            for block in response["Body"].iter_chunks(1 << 20):
                handle.write(block)
                size += len(block)
        log.debug("s3 object downloaded", key=key, bytes=size)
        return True

    def _call(self, function: Any, what: str) -> Any:
        from etl.http import retry_call

        def once() -> Any:
            try:
                return function()
            except Exception as exc:
                raise _classify(exc, what) from exc

        return retry_call(once, attempts=5, describe=what)


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _classify(exc: Exception, what: str) -> Exception:
    """botocore's exceptions as the core's transient/permanent split, with the object and a hint."""
    from botocore import exceptions as botocore_errors

    if isinstance(exc, TransientError | PermanentError):
        return exc
    code = _code(exc)
    if isinstance(exc, botocore_errors.NoCredentialsError) or code in _DENIED:
        return PermanentError(f"{what}: {code or type(exc).__name__}: {exc}; {CREDENTIALS_HINT}")
    if code in _TRANSIENT or isinstance(
        exc,
        botocore_errors.EndpointConnectionError | botocore_errors.ConnectionClosedError
        | botocore_errors.ReadTimeoutError | botocore_errors.ConnectTimeoutError
        | botocore_errors.IncompleteReadError | botocore_errors.ResponseStreamingError,
    ):
        return TransientError(f"{what}: {type(exc).__name__}: {exc}")
    return PermanentError(f"{what}: {type(exc).__name__}: {exc}")
