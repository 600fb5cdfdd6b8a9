"""The metrics file: Prometheus text format, replaced atomically after every run."""

from prometheus_client.parser import text_string_to_metric_families

from tests.ops.helpers import hourly, write_recent_hours


def samples(path):
    families = text_string_to_metric_families(path.read_text())
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in families for sample in family.samples}


def test_metrics_after_each_run(write_pipeline, etl_cli, tmp_path, frozen_clock):
    path = write_pipeline(hourly(settings='metrics = "prom/etl.prom"'))
    write_recent_hours(tmp_path / "AAA.csv", [4, 3, 1, 0])
    assert etl_cli("run", str(path)).exit_code == 0
    found = samples(tmp_path / "prom" / "etl.prom")
    stream = (("pipeline", "g"), ("stream", "ohlcv/AAA/1h"))
    assert found[("etl_stream_last_run_rows", stream)] == 4
    assert found[("etl_stream_last_run_failed", stream)] == 0
    assert found[("etl_stream_open_gaps", stream)] == 1
    assert found[("etl_stream_max_lag_seconds", stream)] == 10800
    assert found[("etl_stream_lag_seconds", stream)] == 1800, "the clock stands at half past the forming hour"
    assert found[("etl_stream_last_success_timestamp_seconds", stream)] == frozen_clock / 1000
    assert found[("etl_run_rows", (("pipeline", "g"),))] == 4
    assert found[("etl_run_failed_streams", (("pipeline", "g"),))] == 0
    assert found[("etl_run_duration_seconds", (("pipeline", "g"),))] >= 0
    assert [p.name for p in (tmp_path / "prom").iterdir()] == ["etl.prom"], "no temp file left"


def test_a_failed_run_is_counted(write_pipeline, etl_cli, tmp_path):
    path = write_pipeline(hourly(settings='metrics = "etl.prom"'))
    (tmp_path / "AAA.csv").write_text("timestamp,open\nnot a time,1\n")
    assert etl_cli("run", str(path)).exit_code == 1
    found = samples(tmp_path / "etl.prom")
    assert found[("etl_stream_last_run_failed", (("pipeline", "g"), ("stream", "ohlcv/AAA/1h")))] == 1
    assert found[("etl_run_failed_streams", (("pipeline", "g"),))] == 1
    assert not any(name == "etl_stream_lag_seconds" for name, _ in found), "no checkpoint, no lag"
    assert not any(name == "etl_stream_last_success_timestamp_seconds" for name, _ in found)


def test_an_unwritable_metrics_path_is_logged_and_the_run_still_succeeds(write_pipeline, etl_cli, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    path = write_pipeline(hourly(settings='metrics = "taken/etl.prom"'))
    write_recent_hours(tmp_path / "AAA.csv", [0])
    result = etl_cli("run", str(path))
    assert result.exit_code == 0
    assert '"event": "cannot write metrics"' in result.stderr
