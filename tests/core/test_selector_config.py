"""A selector's shape is checked without network, by ``etl validate`` and before a run; errors name file, pipeline,
key and what is valid."""

from __future__ import annotations

import pytest

from etl.testing import Reply
from etl.testing.pipelines import run_cli, single_pipeline, write_pipeline


def validate(tmp_path, symbols, plugin="binance", base_url=None):
    source = {"plugin": plugin, "symbols": symbols, "timeframes": ["1h"], "start": "2024-01-01"}
    if plugin == "files":
        source["path"] = "x.csv"
    if base_url:
        source["base_url"] = base_url
    path = write_pipeline(tmp_path, single_pipeline(source, [{"plugin": "duckdb", "path": "m.duckdb"}], name="sel"))
    return path, run_cli("validate", str(path))


@pytest.mark.parametrize(("symbols", "message"), [
    ({"match": ["*USDT"], "exclud": ["*UP*"]},
     "Unknown key 'exclud' in pipelines.sel.source.symbols (did you mean 'exclude'?); valid keys: by, exclude, "
     "match, status, top"),
    ({"status": "active"}, "Invalid value 'active' for pipelines.sel.source.symbols.status; valid: trading, all"),
    ({"top": 50}, "pipelines.sel.source.symbols: 'top' and 'by' go together (top = 50, by = \"quote_volume\"); "
                  "by is missing"),
    ({"by": "quote_volume"}, "pipelines.sel.source.symbols: 'top' and 'by' go together (top = 50, by = "
                             "\"quote_volume\"); top is missing"),
    ({"top": 0, "by": "quote_volume"}, "pipelines.sel.source.symbols.top must be a whole number of symbols, at "
                                       "least 1, not 0"),
    ({"top": 5, "by": "volume"}, "Invalid value 'volume' for pipelines.sel.source.symbols.by; valid: quote_volume"),
    ({"match": []}, "pipelines.sel.source.symbols.match must be a list of symbol patterns such as [\"*USDT\"], "
                    "not []"),
    ({"exclude": [3]}, "pipelines.sel.source.symbols.exclude must be a list of symbol patterns such as "
                       "[\"*USDT\"], not [3]"),
])
def test_a_malformed_selector_is_a_config_error_naming_the_key(tmp_path, fake_server, symbols, message):
    tripwire = fake_server(lambda request: Reply.json({}, 500))
    path, result = validate(tmp_path, symbols, base_url=tripwire.url)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {path}: {message}\n")
    assert run_cli("run", str(path)).exit_code == 2, "a run refuses what validate refuses"
    assert tripwire.requests == [], "no network"


def test_a_well_formed_selector_validates_without_network(tmp_path, fake_server):
    tripwire = fake_server(lambda request: Reply.json({}, 500))
    selector = {"match": ["*USDT"], "exclude": ["*UP*", "*DOWN*"], "status": "all", "top": 20, "by": "quote_volume"}
    _, result = validate(tmp_path, selector, base_url=tripwire.url)
    assert result.exit_code == 0, result
    assert tripwire.requests == []


def test_a_source_that_cannot_list_its_symbols_refuses_a_selector(tmp_path):
    path, result = validate(tmp_path, {"match": ["BTC*"]}, plugin="files")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"Error: {path}: Source 'files' cannot list its symbols, so pipelines.sel.source.symbols must be a list of "
        "symbols, not a selector; sources that can: binance, binance_archive, bybit, ccxt, hyperliquid")
