"""Binance USD-M positioning: four ``/futures/data`` endpoints, one row per sample time.

``globalLongShortAccountRatio`` gives the required columns (``long_short_ratio``, ``long_account``,
``short_account``: every account's long and short shares), and is the spine of the join:
``topLongShortAccountRatio`` adds ``top_long_short_account_ratio``, ``topLongShortPositionRatio``
``top_long_short_position_ratio`` (the top 20% of accounts by margin, counted by accounts and by position size),
``takerlongshortRatio`` ``taker_buy_volume``, ``taker_sell_volume`` and ``taker_buy_sell_ratio``. The top
traders' shares are not kept: they are the ratio's (``r / (1 + r)``), as the global shares are.

A sample time one of the three extra endpoints lacks keeps its row, with nulls in that endpoint's columns; a
sample time the global endpoint lacks has no row (its required columns would be empty) and is counted as
``samples_without_global_ratio``; the hole in the series is then a gap like any missing bar.
Rows may carry ``symbol`` or not, and ``timestamp`` as an integer (live) or a string (the doc examples).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from etl_ccxt.frames import Field, rows_to_frame

if TYPE_CHECKING:
    import polars as pl

TS = Field("ts", "timestamp", "ms")
ENDPOINTS: tuple[tuple[str, tuple[Field, ...]], ...] = (
    ("fapiDataGetGlobalLongShortAccountRatio", (TS, Field("long_short_ratio", "longShortRatio"),
                                                Field("long_account", "longAccount"),
                                                Field("short_account", "shortAccount"))),
    ("fapiDataGetTopLongShortAccountRatio", (TS, Field("top_long_short_account_ratio", "longShortRatio"))),
    ("fapiDataGetTopLongShortPositionRatio", (TS, Field("top_long_short_position_ratio", "longShortRatio"))),
    ("fapiDataGetTakerlongshortRatio", (TS, Field("taker_buy_volume", "buyVol"), Field("taker_sell_volume", "sellVol"),
                                        Field("taker_buy_sell_ratio", "buySellRatio"))),
)
PAGE = 500  # the most rows any of the four gives per request


def joined(pages: Sequence[list[dict[str, Any]]]) -> tuple[pl.DataFrame, int]:
    """The four endpoints' rows for one window (in ``ENDPOINTS`` order) as one frame on the global ratio's sample
    times, ascending, and how many sample times only the other endpoints had."""
    import polars as pl

    frames = [rows_to_frame(rows, fields).unique("ts", keep="last") for rows, (_, fields) in
              zip(pages, ENDPOINTS, strict=True)]
    spine, extras = frames[0], frames[1:]
    frame = spine
    for extra in extras:
        frame = frame.join(extra, on="ts", how="left")
    others = pl.concat([extra.select("ts") for extra in extras]).unique()
    orphans = others.join(spine.select("ts"), on="ts", how="anti").height
    return frame.sort("ts"), orphans
