"""A local alternative.me for tests: ``GET /fng/?limit=N&format=json`` in the API's wire format.

One reading per UTC day from 2018-02-01 to today, newest first; ``limit=0`` returns them all. Values
and timestamps are strings, as the real API sends them, and only the newest reading carries
``time_until_update``. Readings are a pure function of the day, so a test can compute what must land.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from etl.testing import Reply, Request

FIRST_DAY = date(2018, 2, 1)
RECORDED = Path(__file__).parent / "fng_recorded.json"
CLASSIFICATIONS = ((25, "Extreme Fear"), (50, "Fear"), (51, "Neutral"), (75, "Greed"), (101, "Extreme Greed"))


def reading(day: date) -> int:
    """The fake index for ``day``: a slow wave between 10 and 90."""
    return round(50 + 40 * math.sin((day - FIRST_DAY).days / 17))


def classification(value: int) -> str:
    return next(label for bound, label in CLASSIFICATIONS if value < bound)


def day_start(day: date) -> int:
    """Unix seconds of 00:00 UTC on ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def entries(today: date) -> list[dict[str, str]]:
    """Every reading from ``today`` back to the first day, newest first."""
    days = (today - FIRST_DAY).days + 1
    found = []
    for back in range(days):
        day = today - timedelta(days=back)
        value = reading(day)
        found.append({"value": str(value), "value_classification": classification(value),
                      "timestamp": str(day_start(day))})
    seconds_left = day_start(today + timedelta(days=1)) - int(datetime.now(UTC).timestamp())
    found[0]["time_until_update"] = str(max(seconds_left, 0))
    return found


def body(data: list[dict[str, str]], error: str | None = None) -> dict:
    return {"name": "Fear and Greed Index", "data": data, "metadata": {"error": error}}


def handle(request: Request) -> Reply:
    if request.path.rstrip("/") != "/fng":
        return Reply.text("Not Found", 404)
    if request.query.get("format", "json") != "json":
        return Reply.json(body([], "Unsupported format"))
    limit = int(request.query.get("limit", "1"))
    data = entries(datetime.now(UTC).date())
    return Reply.json(body(data if limit == 0 else data[:limit]))


def recorded(request: Request) -> Reply:
    """The recorded answer (two readings), whatever was asked."""
    return Reply.json(json.loads(RECORDED.read_text()))


def error_reply(message: str) -> Reply:
    """How alternative.me reports a problem: HTTP 200, no data, ``metadata.error`` set."""
    return Reply.json(body([], message))
