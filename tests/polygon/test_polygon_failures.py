"""Polygon's refusals: a bad key fails the stream with Polygon's words and never shows the key; 429 is retried."""

from __future__ import annotations

import json

import pytest

from etl.testing import Reply, run_subprocess
from fixtures.fake_polygon import RATE_LIMITED, polygon_error

WRONG_KEY = "pk_wrong_0a1b2c3d4e5f60718293"


@pytest.mark.parametrize(("fault", "said"), [
    pytest.param(polygon_error(429, "ERROR", RATE_LIMITED), "polygon: HTTP 429: You've exceeded the maximum requests",
                 id="429"),
    pytest.param(Reply.text("upstream connect error", 503), "HTTP 503: upstream connect error", id="503"),
])
def test_throttling_and_outages_are_retried_until_the_bars_land(fake_polygon, polygon_pipeline, fault, said):
    fake_polygon.fail_next(fault, fault)
    pipeline = polygon_pipeline()

    result = pipeline.run()

    assert result.exit_code == 0, result
    assert len(pipeline.rows()) == 24
    retries = [json.loads(line) for line in result.stderr.splitlines() if '"retrying"' in line]
    assert len(retries) == 2 and said in retries[0]["error"]


def test_an_error_status_in_a_200_answer_fails_the_stream(fake_polygon, polygon_pipeline):
    fake_polygon.fail_next(Reply.json({"status": "ERROR", "request_id": "r1", "error": "Internal query failure"}))
    pipeline = polygon_pipeline()

    result = pipeline.run()

    assert result.exit_code == 1
    assert "FAILED stocks ohlcv/X:BTCUSD/1h: polygon: X:BTCUSD: status ERROR: Internal query failure " \
           "(request_id r1)" in result.stdout


def test_a_bad_key_fails_the_stream_with_polygons_words_and_the_key_appears_nowhere(fake_polygon, polygon_pipeline,
                                                                                      monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", WRONG_KEY)
    pipeline = polygon_pipeline(("X:BTCUSD", "AAPL"))

    result = run_subprocess("-vv", "run", str(pipeline.path))

    assert result.exit_code == 1, result
    for symbol in ("X:BTCUSD", "AAPL"):
        assert f"FAILED stocks ohlcv/{symbol}/1h: polygon: HTTP 401, the API key was refused: Unknown API Key " \
               "(request_id " in result.stdout
    assert len(fake_polygon.aggs_requests) == 2, "a refused key is not retried"
    state = pipeline.path.parent / ".etl"
    assert "Unknown API Key" in (state / "ledger.db").read_bytes().decode("latin-1")
    for text in (result.stdout, result.stderr, *(path.read_bytes().decode("latin-1") for path in state.rglob("*")
                                                 if path.is_file())):
        assert WRONG_KEY not in text


def test_the_key_never_reaches_the_verbose_log_of_a_good_run(fake_polygon, polygon_pipeline, polygon_key):
    fake_polygon.page_size = 10
    pipeline = polygon_pipeline()

    result = run_subprocess("-vv", "run", str(pipeline.path))

    assert result.exit_code == 0, result
    assert '"GET /v2/aggs/ticker/X:BTCUSD/range/1/hour/' in result.stderr, "urllib3's debug lines are there"
    assert polygon_key not in result.stdout + result.stderr


def test_an_unset_key_variable_is_a_config_error_naming_it(polygon_pipeline, monkeypatch, etl_cli):
    pipeline = polygon_pipeline()
    monkeypatch.delenv("POLYGON_API_KEY")

    result = etl_cli("validate", str(pipeline.path))

    assert result.exit_code == 2
    assert "Environment variable POLYGON_API_KEY used in pipelines.stocks.source.api_key is not set" in result.stderr


def test_a_refusal_that_is_not_about_the_key_names_polygons_message(fake_polygon, polygon_pipeline):
    fake_polygon.fail_next(polygon_error(400, "ERROR", "Could not parse the time parameter: 'from'."))
    pipeline = polygon_pipeline()

    result = pipeline.run()

    assert result.exit_code == 1
    assert "FAILED stocks ohlcv/X:BTCUSD/1h: polygon: HTTP 400: Could not parse the time parameter: 'from'." \
        in result.stdout
