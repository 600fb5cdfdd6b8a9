"""``etl plugins`` lists the core's datasets beside the ones plugins add."""

from __future__ import annotations

import json

from etl.testing.pipelines import run_cli


def test_core_datasets_are_listed_as_registered_by_etl():
    listing = run_cli("plugins")
    assert listing.exit_code == 0, listing
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["name", "kind", "package", "plugin", "live"]
    assert [line.split() for line in lines if " dataset " in line] == [
        ["asset_ctxs", "dataset", "market-etl", lines[1].split()[3], "hyperliquid"],
        ["corporate_actions", "dataset", "market-etl", lines[1].split()[3], "yahoo"],
        ["funding", "dataset", "market-etl", lines[1].split()[3], "etl"],
        ["l2_top", "dataset", "market-etl", lines[1].split()[3], "hyperliquid"],
        ["liquidations", "dataset", "market-etl", lines[1].split()[3], "etl"],
        ["ohlcv", "dataset", "market-etl", lines[1].split()[3], "etl"],
        ["open_interest", "dataset", "market-etl", lines[1].split()[3], "etl"],
        ["positioning", "dataset", "market-etl", lines[1].split()[3], "etl"],
        ["trades", "dataset", "market-etl", lines[1].split()[3], "etl"],
    ]


def test_core_datasets_and_plugin_datasets_side_by_side_in_json():
    listing = {plugin["name"]: plugin for plugin in json.loads(run_cli("plugins", "--json").stdout)}
    assert listing["etl"]["package"] == "market-etl"
    assert listing["etl"]["registered"] == [
        {"kind": "dataset", "name": name}
        for name in ("ohlcv", "funding", "open_interest", "trades", "liquidations", "positioning")
    ]
    assert {"kind": "dataset", "name": "l2_top"} in listing["hyperliquid"]["registered"]


def test_sources_that_follow_a_venue_live_say_which_datasets():
    listing = run_cli("plugins")
    rows = {line.split()[0]: line.split() for line in listing.stdout.splitlines()[1:] if " source " in line}
    assert rows["binance"][5:] == rows["bybit"][5:] == ["ohlcv,", "trades,", "liquidations"]
    assert rows["hyperliquid"][5:] == ["ohlcv,", "trades"]
    assert rows["files"][5:] == [], "a source that cannot follow live shows nothing"
    registered = {entry["name"]: entry for plugin in json.loads(run_cli("plugins", "--json").stdout)
                  for entry in plugin["registered"]}
    assert registered["binance"]["live"] == ["ohlcv", "trades", "liquidations"] and "live" not in registered["files"]
