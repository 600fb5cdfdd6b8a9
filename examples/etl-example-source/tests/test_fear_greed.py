"""The fear_greed source in real pipelines: what lands, the recorded wire format, and its failures."""

from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
from fake_alternative_me import classification, day_start, error_reply, reading, recorded


def pipeline(url: str, **source) -> dict:
    return {"pipelines": {"mood": {
        "source": {"plugin": "fear_greed", "base_url": url, **source},
        "sinks": [{"plugin": "duckdb", "path": "data/market.duckdb"}],
    }}}


def stored(run) -> list[tuple]:
    with duckdb.connect(str(run.path.parent / "data" / "market.duckdb"), read_only=True) as connection:
        return connection.sql(
            "SELECT source, symbol, epoch_ms(ts), value, classification FROM sentiment ORDER BY ts"
        ).fetchall()


def test_a_window_lands_one_row_per_day(alternative_me, run_pipeline):
    run = run_pipeline(pipeline(alternative_me.url, start="2024-02-27", end="2024-03-02"))

    assert run.exit_code == 0, run
    days = [date(2024, 2, 27) + timedelta(days=n) for n in range(4)]
    assert stored(run) == [
        ("fear_greed", "crypto", day_start(day) * 1000, float(reading(day)), classification(reading(day)))
        for day in days
    ]
    assert alternative_me.requests[0].query == {
        "limit": str((datetime.now(UTC).date() - days[0]).days + 1), "format": "json"}


def test_the_recorded_answer_parses(fake_server, run_pipeline):
    server = fake_server(recorded)

    run = run_pipeline(pipeline(server.url, start="2019-02-25", end="2019-02-27"))

    assert run.exit_code == 0, run
    assert stored(run) == [
        ("fear_greed", "crypto", 1551070800000, 47.0, "Neutral"),
        ("fear_greed", "crypto", 1551157200000, 40.0, "Fear"),
    ]


def test_an_error_in_the_body_fails_the_stream_with_the_message(alternative_me, run_pipeline):
    alternative_me.fail_next(error_reply("Invalid limit"))

    run = run_pipeline(pipeline(alternative_me.url, start="2024-01-01", end="2024-01-05"))

    assert run.exit_code == 1
    assert "FAILED mood sentiment/crypto: fear_greed: alternative.me answered: Invalid limit" in run.stdout


@pytest.mark.parametrize(("source", "words"), [
    ({"symbols": ["BTC"]}, "fear_greed has one symbol, 'crypto'; not 'BTC'"),
    ({"timeout": 0}, "Invalid value 0.0 for 'timeout'"),
    ({"timeframes": ["1d"]}, "Key 'timeframes' in pipelines.mood.source does not apply to dataset 'sentiment'"),
])
def test_bad_settings_are_refused_before_anything_runs(alternative_me, run_pipeline, source, words):
    run = run_pipeline(pipeline(alternative_me.url, start="2024-01-01", **source), command="validate")

    assert run.exit_code == 2
    assert words in run.stderr
    assert not alternative_me.requests
