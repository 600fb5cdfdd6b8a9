"""Option check messages never show a secret option's value, nor a value that came from ``${VAR}``."""

from __future__ import annotations

from etl.testing.pipelines import run_cli, single_pipeline, write_pipeline

SOURCE = {"plugin": "files", "path": "x.csv", "symbols": ["BTCUSDT"], "timeframes": ["1h"], "start": "2024-01-01"}
SINK = {"plugin": "duckdb", "path": "x.duckdb"}
SECRET = "hunter2-s3cr3t"


def error_of(tmp_path, source=SOURCE, sink=SINK) -> str:
    path = write_pipeline(tmp_path, single_pipeline(source, [sink], name="p"))
    result = run_cli("validate", str(path), env={"ETL_TEST_SECRET": SECRET})
    assert result.exit_code == 2, result
    assert SECRET not in result.output
    return result.stderr.removeprefix(f"Error: {path}: ").rstrip("\n")


def test_a_secret_option_of_the_wrong_type_is_not_echoed(tmp_path):
    sink = {"plugin": "postgres", "dsn": 12345678}
    assert error_of(tmp_path, sink=sink) == "Key 'dsn' in pipelines.p.sinks[0] must be a string, not ***"


def test_an_invalid_dsn_from_the_environment_is_not_echoed(tmp_path):
    sink = {"plugin": "postgres", "dsn": "postgresql://etl:${ETL_TEST_SECRET}@host/db?sslmode=nonsense x"}
    assert error_of(tmp_path, sink=sink) == (
        "'dsn' is not a valid libpq connection string or postgresql:// URL (pipelines.p.sinks[0])"
    )


def test_a_bad_choice_from_the_environment_is_masked(tmp_path):
    source = {**SOURCE, "format": "${ETL_TEST_SECRET}"}
    assert error_of(tmp_path, source=source) == (
        "Invalid value *** for 'format' in pipelines.p.source; valid values: auto, csv, parquet"
    )


def test_a_bad_date_from_the_environment_is_masked(tmp_path):
    source = {**SOURCE, "start": "${ETL_TEST_SECRET}"}
    assert error_of(tmp_path, source=source).startswith("Invalid date *** in pipelines.p.source.start; ")


def test_values_written_in_the_file_are_still_shown(tmp_path):
    source = {**SOURCE, "format": "xlsx"}
    assert error_of(tmp_path, source=source) == (
        "Invalid value 'xlsx' for 'format' in pipelines.p.source; valid values: auto, csv, parquet"
    )
