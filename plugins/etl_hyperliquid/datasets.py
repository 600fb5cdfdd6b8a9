"""The two datasets only Hyperliquid's archive can fill: top of the L2 book, and per-minute asset contexts.

Plain data, so registering them costs nothing at ``etl plugins`` time.
"""

from __future__ import annotations

import etl

L2_TOP = etl.Dataset(
    "l2_top",
    (
        ("source", "str"),
        ("symbol", "str"),
        ("ts", "ts"),
        ("bid_px", "f64"),
        ("bid_sz", "f64"),
        ("ask_px", "f64"),
        ("ask_sz", "f64"),
        ("mid", "f64"),
        ("spread", "f64"),
    ),
    ("source", "symbol", "ts"),
    "best bid and ask of each L2 book snapshot; ts is the exchange time of the snapshot; mid = (bid + ask) / 2, "
    "spread = ask - bid; snapshots with an empty side are left out (and logged)",
)

ASSET_CTXS = etl.Dataset(
    "asset_ctxs",
    (
        ("source", "str"),
        ("symbol", "str"),
        ("ts", "ts"),
        ("funding", "f64"),
        ("open_interest", "f64"),
        ("mark_px", "f64"),
        ("oracle_px", "f64"),
    ),
    ("source", "symbol", "ts"),
    "per-minute context of a perpetual: current funding rate, open interest (coins), mark and oracle prices; "
    "extra columns mid_px, premium, impact_bid_px, impact_ask_px (null when the book is too thin), prev_day_px "
    "and day_ntl_vlm (24h notional volume)",
)
