"""The bucket's S3 listing (ListObjects v1): ``GET /?prefix=P&delimiter=/[&marker=M]`` answering XML.

Up to 1000 entries a page; while ``IsTruncated`` is true the next page starts at ``NextMarker`` (sent only
when a delimiter was given) or else after the last key. Only ``Contents`` matter here (the files and their
sizes): ``CommonPrefixes`` and the echoed request ``Prefix`` are not keys.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

from etl.errors import TransientError

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def list_files(client: Any, prefix: str) -> dict[str, int]:
    """Every key under ``prefix`` (one folder level) with its size in bytes, through all pages."""
    files: dict[str, int] = {}
    marker = ""
    while True:
        params = {"prefix": prefix, "delimiter": "/", **({"marker": marker} if marker else {})}
        response = client.request("GET", "/", params=params)
        page, marker = parse_page(response.content, response.url)
        files.update(page)
        if not marker:
            return files


def parse_page(body: bytes, url: str) -> tuple[dict[str, int], str]:
    """One page's keys and sizes, and the marker of the next page ("" when this was the last)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        # data.binance.vision itself answers listings with its HTML browser page: name the right endpoint.
        raise TransientError(f"GET {url}: not an S3 listing ({exc}): {body[:120]!r}") from None
    files = {item.findtext(f"{NS}Key", ""): int(item.findtext(f"{NS}Size", "0")) for item in root.iter(f"{NS}Contents")}
    if root.findtext(f"{NS}IsTruncated", "false") != "true":
        return files, ""
    following = root.findtext(f"{NS}NextMarker") or (max(files) if files else "")
    if not following:
        prefixes = [item.findtext(f"{NS}Prefix", "") for item in root.iter(f"{NS}CommonPrefixes")]
        following = max(prefixes, default="")
    return files, following
