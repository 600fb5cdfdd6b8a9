"""``etl validate`` checks a files source's inputs: every stream has files, in a format the source reads."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl

from etl.testing.pipelines import run_cli, single_pipeline, write_pipeline

ROWS = pl.DataFrame({"ts": ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"], "open": [1.0, 1.1],
                     "high": [2.0, 2.1], "low": [0.5, 0.6], "close": [1.5, 1.6], "volume": [10.0, 11.0]})


def files_pipeline(folder: Path, path: str, symbols=("BTC",), **options) -> Path:
    source = {"plugin": "files", "path": path, "symbols": list(symbols), "timeframes": ["1h"],
              "start": "2024-01-01", "end": "2024-01-02", **options}
    return write_pipeline(folder, single_pipeline(source, [{"plugin": "parquet", "path": "lake"}], name="f"))


def validate_error(path: Path, env: dict[str, str] | None = None) -> str:
    result = run_cli("validate", str(path), env=env)
    assert result.exit_code == 2, result
    assert result.stdout == ""
    return result.stderr


def test_valid_csv_and_parquet_inputs_validate(tmp_path):
    ROWS.write_csv(tmp_path / "BTC.csv")
    ROWS.write_parquet(tmp_path / "ETH.pq")
    csv = run_cli("validate", str(files_pipeline(tmp_path, "BTC.csv")))
    assert (csv.exit_code, csv.stdout) == (0, "pipelines.toml: 1 pipelines, 1 streams: OK\n")
    assert run_cli("validate", str(files_pipeline(tmp_path, "ETH.pq"))).exit_code == 0


def test_a_stream_without_files_is_named(tmp_path):
    ROWS.write_csv(tmp_path / "BTC.csv")
    path = files_pipeline(tmp_path, "{symbol}.csv", symbols=("BTC", "ETH"))
    assert validate_error(path) == (
        f"Error: {path}: files: no file matches {tmp_path / 'ETH.csv'} for ohlcv/ETH/1h (pipelines.f.source)\n"
    )
    run = run_cli("run", str(path))
    assert run.exit_code == 1, "a run still loads the streams that have files"
    assert run.stdout.splitlines()[0] == f"FAILED f ohlcv/ETH/1h: files: no file matches {tmp_path / 'ETH.csv'} " \
                                         f"for ohlcv/ETH/1h"


def test_a_feather_file_is_refused_with_its_detected_format(tmp_path):
    ROWS.write_ipc(tmp_path / "BTC.feather")
    path = files_pipeline(tmp_path, "BTC.feather")
    message = (f"files: cannot read {tmp_path / 'BTC.feather'} as csv: detected format feather (Arrow IPC); "
               "the files source reads csv and parquet")
    assert validate_error(path) == f"Error: {path}: {message} (pipelines.f.source)\n"
    run = run_cli("run", str(path))
    assert run.exit_code == 1, "a run says the same, for the stream, instead of a garbled CSV error"
    assert run.stdout.splitlines()[0] == f"FAILED f ohlcv/BTC/1h: {message}"


def test_a_zipped_csv_and_a_csv_named_parquet_are_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "BTC-1h-2024-01.zip", "w") as archive:
        archive.writestr("BTC-1h-2024-01.csv", ROWS.write_csv())
    ROWS.write_csv(tmp_path / "ETH.parquet")
    zipped = validate_error(files_pipeline(tmp_path, "BTC-*.zip"))
    assert zipped.endswith(f": files: cannot read {tmp_path / 'BTC-1h-2024-01.zip'} as csv: detected format zip; "
                           f"the files source reads csv and parquet (pipelines.f.source)\n")
    misnamed = validate_error(files_pipeline(tmp_path, "ETH.parquet"))
    assert misnamed.endswith(f": files: cannot read {tmp_path / 'ETH.parquet'} as parquet: detected format csv; "
                             f"the files source reads csv and parquet (pipelines.f.source)\n")
    assert run_cli("validate", str(files_pipeline(tmp_path, "ETH.parquet", format="csv"))).exit_code == 0


def test_a_path_from_the_environment_is_masked(tmp_path):
    path = files_pipeline(tmp_path, "${ETL_TEST_INPUT}/BTC.csv")
    message = validate_error(path, env={"ETL_TEST_INPUT": str(tmp_path / "secret-folder")})
    assert message == f"Error: {path}: files: no file matches ***/BTC.csv for ohlcv/BTC/1h (pipelines.f.source)\n"
