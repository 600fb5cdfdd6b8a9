"""A files source of hourly bars whose CSV a test rewrites: bars appear late, or never."""

from __future__ import annotations

from pathlib import Path


def hourly(keys: str = "", settings: str = "") -> str:
    """The pipeline file: pipeline ``g`` reads ``AAA.csv`` into ``g.duckdb``; ``keys`` go in ``[pipelines.g]``."""
    return f"""
[settings]
{settings}

[pipelines.g]
{keys}

[pipelines.g.source]
plugin = "files"
path = "{{symbol}}.csv"
columns = {{ ts = "timestamp" }}
symbols = ["AAA"]
timeframes = ["1h"]

[[pipelines.g.sinks]]
plugin = "duckdb"
path = "g.duckdb"
"""


def write_hours(path: Path, hours: list[int]) -> None:
    """Hourly bars of 2024-01-01 (and the days after, for hours past 23) at the given hours."""
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"2024-01-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z,1,2,0.5,1.5,10" for hour in hours]
    path.write_text("\n".join(lines) + "\n")


def write_recent_hours(path: Path, hours_ago: list[int]) -> None:
    """Hourly bars that closed ``hours_ago`` hours before the bar forming now (0: the last closed bar)."""
    from etl.timeframes import HOUR, floor_ts, iso, now_ms

    last = floor_ts(now_ms(), "1h") - HOUR
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{iso(last - ago * HOUR)},1,2,0.5,1.5,10" for ago in sorted(hours_ago, reverse=True)]
    path.write_text("\n".join(lines) + "\n")
