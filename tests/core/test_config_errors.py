"""Every bad pipeline file is exit code 2 with a message naming the file, the pipeline and the key."""

from __future__ import annotations

import pytest

GOOD_SOURCE = """
    [pipelines.crypto.source]
    plugin = "files"
    path = "x.csv"
    symbols = ["BTCUSDT"]
    timeframes = ["1h"]
    start = "2024-01-01"
"""
GOOD_SINK = """
    [[pipelines.crypto.sinks]]
    plugin = "duckdb"
    path = "x.duckdb"
"""

CASES = {
    "unknown source": (
        GOOD_SOURCE.replace('"files"', '"binanse"') + GOOD_SINK,
        "Unknown source 'binanse' in pipelines.crypto.source.plugin; installed sources: ",
    ),
    "unknown sink": (
        GOOD_SOURCE + GOOD_SINK.replace('"duckdb"', '"duckbd"'),
        "Unknown sink 'duckbd' in pipelines.crypto.sinks[0].plugin; installed sinks: duckdb, parquet",
    ),
    "unknown transform": (
        GOOD_SOURCE + '[[pipelines.crypto.transforms]]\nplugin = "nope"\n' + GOOD_SINK,
        "Unknown transform 'nope' in pipelines.crypto.transforms[0].plugin; installed transforms: ",
    ),
    "unknown source key": (
        GOOD_SOURCE + 'colour = "red"\n' + GOOD_SINK,
        "Unknown key 'colour' in pipelines.crypto.source; valid keys: ",
    ),
    "misspelled core key": (
        GOOD_SOURCE.replace("symbols =", "symbol =") + GOOD_SINK,
        "Unknown key 'symbol' in pipelines.crypto.source (did you mean 'symbols'?); valid keys: batch_rows, "
        "candle_type, columns, dataset, end, extras, fallback, format, layout, path, plugin, start, symbol_map, "
        "symbols, timeframes, ts_format, ts_unit",
    ),
    "misspelled required sink key": (
        GOOD_SOURCE + GOOD_SINK.replace("path =", "pth ="),
        "Unknown key 'pth' in pipelines.crypto.sinks[0] (did you mean 'path'?); valid keys: memory_limit, path, table",
    ),
    "misspelled top-level key": (
        "[setings]\n" + GOOD_SOURCE + GOOD_SINK,
        "Unknown key 'setings' in the top level (did you mean 'settings'?); valid keys: pipelines, settings",
    ),
    "unknown sink key": (
        GOOD_SOURCE + GOOD_SINK + "flavour = 1\n",
        "Unknown key 'flavour' in pipelines.crypto.sinks[0]; valid keys: memory_limit, path, table",
    ),
    "wrong type": (
        GOOD_SOURCE.replace('path = "x.csv"', "path = 42") + GOOD_SINK,
        "Key 'path' in pipelines.crypto.source must be a string, not 42",
    ),
    "bad choice": (
        GOOD_SOURCE + 'format = "xlsx"\n' + GOOD_SINK,
        "Invalid value 'xlsx' for 'format' in pipelines.crypto.source; valid values: auto, csv, parquet",
    ),
    "bad timeframe": (
        GOOD_SOURCE.replace('["1h"]', '["1hour"]') + GOOD_SINK,
        "Invalid timeframe '1hour' in pipelines.crypto.source.timeframes; files offers: 1s, 1m, 2m, 3m, 5m",
    ),
    "missing timeframes": (
        GOOD_SOURCE.replace('timeframes = ["1h"]', "") + GOOD_SINK,
        "Missing key 'timeframes' in pipelines.crypto.source; files offers: 1s, 1m",
    ),
    "bad date": (
        GOOD_SOURCE.replace('"2024-01-01"', '"2024-13-45"') + GOOD_SINK,
        "Invalid date '2024-13-45' in pipelines.crypto.source.start; use an ISO date or datetime",
    ),
    "end before start": (
        GOOD_SOURCE + 'end = "2023-01-01"\n' + GOOD_SINK,
        "pipelines.crypto.source.end (2023-01-01) must be after pipelines.crypto.source.start (2024-01-01)",
    ),
    "missing env": (
        GOOD_SOURCE.replace('path = "x.csv"', 'path = "${ETL_TEST_UNSET_VARIABLE}/x.csv"') + GOOD_SINK,
        "Environment variable ETL_TEST_UNSET_VARIABLE used in pipelines.crypto.source.path is not set",
    ),
    "missing sinks": (GOOD_SOURCE, "Missing [[pipelines.crypto.sinks]]: a pipeline needs at least one sink"),
    "missing symbols": (
        GOOD_SOURCE.replace('symbols = ["BTCUSDT"]', "") + GOOD_SINK,
        "Missing key 'symbols' in pipelines.crypto.source: list the files symbols to load",
    ),
    "missing required option": (
        GOOD_SOURCE + GOOD_SINK.replace('path = "x.duckdb"', ""),
        "Missing required key 'path' in pipelines.crypto.sinks[0]",
    ),
    "unknown dataset": (
        GOOD_SOURCE + 'dataset = "candles"\n' + GOOD_SINK,
        "Source 'files' does not offer dataset 'candles' (pipelines.crypto.source.dataset); it offers: ohlcv,",
    ),
    "unknown pipeline key": (
        GOOD_SOURCE + GOOD_SINK + "[pipelines.crypto.extra]\n",
        "Unknown key 'extra' in pipelines.crypto; valid keys: batch_rows, chunk, commit_mb, commit_rows, concurrency, "
        "max_lag, rate_budget, sink_wait, sinks, source, transforms",
    ),
    "bad concurrency": (
        "[pipelines.crypto]\nconcurrency = 0\n" + GOOD_SOURCE + GOOD_SINK,
        "Key 'concurrency' in pipelines.crypto must be at least 1, not 0",
    ),
    "plugin's own check": (
        GOOD_SOURCE + GOOD_SINK.replace('"duckdb"', '"postgres"').replace('path = "x.duckdb"', 'dsn = "not a dsn"'),
        "'dsn' is not a valid libpq connection string or postgresql:// URL (pipelines.crypto.sinks[0])",
    ),
    "invalid toml": ("[pipelines.crypto.source\n", "invalid TOML: "),
    "no pipelines": ("[settings]\n", "No pipelines defined; add a [pipelines.NAME.source] table"),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_input_is_exit_2_naming_file_and_key(case, command, write_pipeline, etl_cli, tmp_path):
    text, message = CASES[case]
    path = write_pipeline(text)
    result = etl_cli(command, str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {path}: ")
    assert message in result.stderr
    assert not (tmp_path / ".etl").exists(), "nothing may run or be written"


def test_missing_file_is_exit_2(etl_cli, tmp_path):
    result = etl_cli("run", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'nope.toml'}: no such pipeline file\n"


def test_unknown_pipeline_name_lists_the_valid_ones(write_pipeline, etl_cli):
    path = write_pipeline(GOOD_SOURCE + GOOD_SINK)
    result = etl_cli("run", str(path), "--pipeline", "cryptoo")
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}: no pipeline 'cryptoo'; pipelines: crypto\n"


def test_env_variables_are_substituted(write_pipeline, etl_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ETL_TEST_DATA", str(tmp_path / "vendor"))
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "BTCUSDT.csv").write_text("ts,open,high,low,close,volume\n")
    path = write_pipeline(GOOD_SOURCE.replace('path = "x.csv"', 'path = "${ETL_TEST_DATA}/{symbol}.csv"') + GOOD_SINK)
    result = etl_cli("validate", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "pipelines.toml: 1 pipelines, 1 streams: OK\n"


def test_corrupt_checkpoint_is_an_error_with_its_path_never_a_restart(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(GOOD_SOURCE + GOOD_SINK)
    checkpoint = tmp_path / ".etl" / "checkpoints" / "crypto.json"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text('{"streams": {"ohlcv/BTCUSDT/1h": {"next_ms": 17')
    result = etl_cli("run", str(path))
    assert result.exit_code == 2
    assert f"Checkpoint {checkpoint} is unreadable" in result.stderr
    assert checkpoint.read_text() == '{"streams": {"ohlcv/BTCUSDT/1h": {"next_ms": 17'
    assert not (tmp_path / "x.duckdb").exists()
