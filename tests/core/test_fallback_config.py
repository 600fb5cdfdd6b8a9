"""``etl validate`` checks a source's fallbacks and symbol map, naming the file and the key."""

from __future__ import annotations

import pytest

SOURCE = """\
[pipelines.btc.source]
plugin = "binance"
symbols = ["BTC"]
timeframes = ["1h"]
start = "2024-01-01"
"""
SINK = """
[[pipelines.btc.sinks]]
plugin = "duckdb"
path = "market.duckdb"
"""


@pytest.mark.parametrize(("extra", "message"), [
    pytest.param('fallback = [{ plugin = "yahooo" }]\n',
                 "Unknown source 'yahooo' in pipelines.btc.source.fallback[0].plugin; installed sources: ",
                 id="unknown-plugin"),
    pytest.param('fallback = [{ plugin = "yahoo", symbols = ["BTC-USD"] }]\n',
                 "Key 'symbols' in pipelines.btc.source.fallback[0] is the primary source's", id="inherited-key"),
    pytest.param('fallback = [{ plugin = "yahoo", requests_per_minute = 0 }]\n',
                 "Invalid value 0 for 'requests_per_minute' in pipelines.btc.source.fallback[0]", id="bad-option"),
    pytest.param('fallback = [{ plugin = "yahoo", colour = "red" }]\n',
                 "Unknown key 'colour' in pipelines.btc.source.fallback[0]", id="unknown-option"),
    pytest.param('fallback = { plugin = "yahoo" }\n',
                 "pipelines.btc.source.fallback must be an array of tables", id="not-a-list"),
    pytest.param('symbol_map = { BTC = "BTC-USD" }\n',
                 "pipelines.btc.source.symbol_map.BTC must be a table of plugin = \"symbol\"", id="entry-not-a-table"),
    pytest.param('symbol_map = { BTC = { yahooo = "BTC-USD" } }\n',
                 "Unknown source 'yahooo' in pipelines.btc.source.symbol_map.BTC; installed sources: ",
                 id="map-unknown-plugin"),
    pytest.param('symbol_map = { BTC = { yahoo = 7 } }\n',
                 "'yahoo' in pipelines.btc.source.symbol_map.BTC must be a non-empty string, not 7", id="not-a-string"),
])
def test_bad_fallbacks_and_maps_are_exit_2_naming_file_and_key(write_pipeline, etl_cli, extra, message):
    path = write_pipeline(SOURCE + extra + SINK)

    result = etl_cli("validate", str(path))

    assert result.exit_code == 2, result
    assert result.stderr.startswith(f"Error: {path}: ")
    assert message in result.stderr


def test_a_fallback_that_does_not_offer_the_dataset(write_pipeline, etl_cli):
    funding = SOURCE.replace('timeframes = ["1h"]', 'dataset = "funding"\nmarket = "usdm"')
    path = write_pipeline(funding + 'fallback = [{ plugin = "yahoo" }]\n' + SINK)

    result = etl_cli("validate", str(path))

    assert result.exit_code == 2
    assert "Source 'yahoo' does not offer dataset 'funding' (pipelines.btc.source.fallback[0].dataset)" in result.stderr


def test_a_symbol_map_file_that_does_not_exist(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(SOURCE + 'symbol_map = "maps/crypto.toml"\n' + SINK)

    result = etl_cli("validate", str(path))

    assert result.exit_code == 2
    assert f"pipelines.btc.source.symbol_map: no such symbol map file {tmp_path / 'maps' / 'crypto.toml'}" \
        in result.stderr


def test_a_bad_entry_of_a_symbol_map_file_names_the_file_and_the_key(write_pipeline, etl_cli, tmp_path):
    (tmp_path / "crypto.toml").write_text('BTC = { yahoo = "BTC-USD" }\nETH = "ETH-USD"\n')
    path = write_pipeline(SOURCE + 'symbol_map = "crypto.toml"\n' + SINK)

    result = etl_cli("validate", str(path))

    assert result.exit_code == 2
    assert f"key 'ETH' of symbol map {tmp_path / 'crypto.toml'} (pipelines.btc.source.symbol_map) must be a table" \
        in result.stderr


def test_a_good_fallback_and_map_validate(write_pipeline, etl_cli, tmp_path):
    (tmp_path / "crypto.toml").write_text('BTC = { binance = "BTCUSDT", yahoo = "BTC-USD" }\n')
    path = write_pipeline(SOURCE + 'symbol_map = "crypto.toml"\nfallback = [{ plugin = "yahoo", calendar = "none" }]\n'
                          + SINK)

    result = etl_cli("validate", str(path))

    assert result.exit_code == 0, result


def test_etl_stream_refuses_a_fallback(write_pipeline, etl_cli):
    path = write_pipeline(SOURCE + 'fallback = [{ plugin = "bybit" }]\n' + SINK)

    result = etl_cli("stream", str(path))

    assert result.exit_code == 2
    assert "pipelines.btc.source: fallback and symbol_map apply to etl run and etl backfill" in result.stderr


def test_validate_looks_for_a_fallbacks_local_inputs_under_its_own_symbols(write_pipeline, etl_cli):
    path = write_pipeline(SOURCE + 'symbol_map = { BTC = { files = "XBT" } }\n'
                          'fallback = [{ plugin = "files", path = "data/{symbol}_{timeframe}.csv" }]\n' + SINK)

    result = etl_cli("validate", str(path))

    assert result.exit_code == 2
    assert "XBT_1h.csv" in result.stderr and "(pipelines.btc.source.fallback[0])" in result.stderr
